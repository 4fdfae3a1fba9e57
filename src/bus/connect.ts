import { readFileSync } from 'node:fs';
import { Events, connect, credsAuthenticator, nkeyAuthenticator } from 'nats';
import type { ConnectionOptions, NatsConnection } from 'nats';
import type { ConnectionConfig } from '../core/config';
import { settledWithin } from '../core/pause';

/** Where a connection's refused operations are told: one line each. Default: the process's stderr. */
export type NatsProblemSink = (line: string) => void;

const toStderr =
  (name: string): NatsProblemSink =>
  (line) =>
    void process.stderr.write(`${name}: ${line}\n`);

/**
 * The inbox prefix a connection uses: `CS_NATS_INBOX_PREFIX`, else
 * `_INBOX_<user>` for a named user (a name that is one subject token), else nats.js' `_INBOX`. With per-user
 * prefixes a user may be allowed to subscribe to its own replies only
 * (DESIGN §8), so nobody reads another process's take replies.
 */
export function inboxPrefixOf(config: ConnectionConfig): string | undefined {
  if (config.natsInboxPrefix !== undefined) return config.natsInboxPrefix;
  return config.natsUser !== undefined && /^[A-Za-z0-9_+=,@%-]+$/.test(config.natsUser) ? `_INBOX_${config.natsUser}` : undefined;
}

/**
 * Opens a NATS connection that keeps reconnecting for as long as the process
 * lives. Every operation the server refuses (a permissions violation: a
 * publish or subscription the user may not make) is told to `onProblem`, so
 * a misconfigured permission shows in the process's log instead of failing
 * silently.
 */
export async function connectNats(config: ConnectionConfig, name: string, extra: Partial<ConnectionOptions> = {}, onProblem: NatsProblemSink = toStderr(name)): Promise<NatsConnection> {
  const opts: ConnectionOptions = {
    servers: config.natsUrl.split(',').map((s) => s.trim()),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
    ...extra,
  };
  const inboxPrefix = inboxPrefixOf(config);
  if (inboxPrefix !== undefined) opts.inboxPrefix = inboxPrefix;
  if (config.natsUser !== undefined) {
    opts.user = config.natsUser;
    opts.pass = config.natsPass;
  }
  if (config.natsToken !== undefined) opts.token = config.natsToken;
  if (config.natsCreds !== undefined) {
    const text = readFileSync(config.natsCreds);
    opts.authenticator = text.includes('-----BEGIN NATS USER JWT-----') ? credsAuthenticator(text) : nkeyAuthenticator(new TextEncoder().encode(text.toString('utf8').trim()));
  }
  const nc = await connect(opts);
  void tellProblems(nc, onProblem);
  return nc;
}

/** Reads the connection's status until it closes, telling each error the server sent. */
async function tellProblems(nc: NatsConnection, onProblem: NatsProblemSink): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type !== Events.Error) continue;
    const ctx = s.permissionContext;
    onProblem(
      ctx ? `NATS server refused ${ctx.operation} to "${ctx.subject}": permissions violation; check this user's permissions (cluster-sync nats-config)` : `NATS server error: ${String(s.data)}`,
    );
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export function encodeJson(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}
export function decodeText(data: Uint8Array): string {
  return dec.decode(data);
}

/** How long {@link closeNats} lets a drain run before it closes the connection, ms. */
export const NATS_DRAIN_MS = 2000;

/**
 * Drains a connection (its subscriptions get what is in flight, its
 * publishes are flushed), then closes it if the drain did not: with the NATS
 * server gone, nats.js's drain never ends and the connection goes on
 * reconnecting, which kept a stopping process alive until it was killed.
 */
export async function closeNats(nc: NatsConnection, drainMs = NATS_DRAIN_MS): Promise<void> {
  if (nc.isClosed()) return;
  await settledWithin(
    nc.drain().catch(() => undefined),
    drainMs,
  );
  if (!nc.isClosed()) await nc.close().catch(() => undefined);
}
