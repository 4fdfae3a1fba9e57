import { z } from 'zod';
import { InvalidInputError } from './errors';

/**
 * Connection settings shared by every process. Read once at the edge
 * (flags over environment over defaults) and passed down typed.
 */
export const ConnectionConfigSchema = z.object({
  /** Redis URL. Env `CS_REDIS_URL`. Default `redis://127.0.0.1:6379`. */
  redisUrl: z.string().url().default('redis://127.0.0.1:6379'),
  /** NATS server URL(s), comma separated. Env `CS_NATS_URL`. Default `nats://127.0.0.1:4222`. */
  natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
  /** NATS user. Env `CS_NATS_USER`. */
  natsUser: z.string().optional(),
  /** NATS password. Env `CS_NATS_PASS`. */
  natsPass: z.string().optional(),
  /** NATS token. Env `CS_NATS_TOKEN`. */
  natsToken: z.string().optional(),
  /** Path of a NATS credentials (.creds) file or an nkey seed file. Env `CS_NATS_CREDS`. */
  natsCreds: z.string().optional(),
  /**
   * Prefix of this process's reply subjects (nats.js `inboxPrefix`). Env
   * `CS_NATS_INBOX_PREFIX`. Default `_INBOX_<user>` with `CS_NATS_USER`, else
   * `_INBOX`. `cluster-sync nats-config` allows each user its own prefix only.
   */
  natsInboxPrefix: z
    .string()
    .regex(/^[A-Za-z0-9_+=,@%-]+(\.[A-Za-z0-9_+=,@%-]+)*$/, 'dot-separated subject tokens without wildcards or white space')
    .optional(),
  /** Subject prefix. Env `CS_SUBJECT_PREFIX`. Default `cs`. */
  subjectPrefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'dot-separated tokens of letters, digits, _ and -')
    .default('cs'),
  /** Prefix for every Redis key, for sharing one Redis between installs or tests. Env `CS_KEY_PREFIX`. Default empty, which keeps Compass-CI's key names. */
  keyPrefix: z.string().regex(/^[A-Za-z0-9_:/.-]*$/).default(''),
});
export type ConnectionConfig = z.infer<typeof ConnectionConfigSchema>;

export type ConnectionFlags = Partial<Record<keyof ConnectionConfig, string | undefined>>;

const ENV: Record<keyof ConnectionConfig, string> = {
  redisUrl: 'CS_REDIS_URL',
  natsUrl: 'CS_NATS_URL',
  natsUser: 'CS_NATS_USER',
  natsPass: 'CS_NATS_PASS',
  natsToken: 'CS_NATS_TOKEN',
  natsCreds: 'CS_NATS_CREDS',
  natsInboxPrefix: 'CS_NATS_INBOX_PREFIX',
  subjectPrefix: 'CS_SUBJECT_PREFIX',
  keyPrefix: 'CS_KEY_PREFIX',
};

export function loadConnectionConfig(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  const raw: Record<string, string> = {};
  for (const [key, name] of Object.entries(ENV)) {
    const v = flags[key as keyof ConnectionConfig] ?? env[name];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  const parsed = ConnectionConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new InvalidInputError('configuration', issue?.message ?? 'invalid', `${key} (env ${ENV[key as keyof ConnectionConfig] ?? '?'})`);
  }
  return parsed.data;
}

/** True when the user configured neither server, so `demo` may start local ones. */
export function hasConfiguredServers(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(flags.redisUrl ?? env.CS_REDIS_URL ?? flags.natsUrl ?? env.CS_NATS_URL);
}
