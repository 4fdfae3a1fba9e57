import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, nkeyAuthenticator } from 'nats';
import type { ConnectionOptions, NatsConnection } from 'nats';
import type { ConnectionConfig } from '../core/config';

/** Opens a NATS connection that keeps reconnecting for as long as the process lives. */
export async function connectNats(config: ConnectionConfig, name: string, extra: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  const opts: ConnectionOptions = {
    servers: config.natsUrl.split(',').map((s) => s.trim()),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
    ...extra,
  };
  if (config.natsUser !== undefined) {
    opts.user = config.natsUser;
    opts.pass = config.natsPass;
  }
  if (config.natsToken !== undefined) opts.token = config.natsToken;
  if (config.natsCreds !== undefined) {
    const text = readFileSync(config.natsCreds);
    opts.authenticator = text.includes('-----BEGIN NATS USER JWT-----')
      ? credsAuthenticator(text)
      : nkeyAuthenticator(new TextEncoder().encode(text.toString('utf8').trim()));
  }
  return connect(opts);
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export function encodeJson(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}
export function decodeText(data: Uint8Array): string {
  return dec.decode(data);
}
