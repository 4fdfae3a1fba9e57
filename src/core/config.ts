import { z } from 'zod';
import { InvalidInputError } from './errors';

/** One sentinel's address. */
export interface SentinelAddress {
  host: string;
  port: number;
}

/** `host:port,host:port,...` (IPv6 as `[::1]:26379`) -> addresses; anything else is refused naming the bad entry. */
const SentinelListSchema = z.string().transform((text, ctx): SentinelAddress[] => {
  const out: SentinelAddress[] = [];
  for (const entry of text.split(',').map((e) => e.trim())) {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry);
    const port = Number(m?.[3]);
    if (!m || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry)} is not host:port (e.g. 10.0.0.1:26379)` });
      return z.NEVER;
    }
    out.push({ host: m[1] ?? m[2] ?? '', port });
  }
  return out;
});

/**
 * Connection settings shared by every process. Read once at the edge
 * (flags over environment over defaults) and passed down typed.
 */
export const ConnectionConfigSchema = z.object({
  /** Redis URL. Env `CS_REDIS_URL`. Default `redis://127.0.0.1:6379`. Not with `redisSentinels`. */
  redisUrl: z.string().url().default('redis://127.0.0.1:6379'),
  /**
   * Sentinels to ask for the Redis primary, `host:port,...`. Env
   * `CS_REDIS_SENTINELS`. When set, every Redis connection (BullMQ's too)
   * goes to the primary the sentinels name and follows it through failovers.
   */
  redisSentinels: SentinelListSchema.optional(),
  /** The primary's name at the sentinels (`sentinel monitor NAME ...`). Env `CS_REDIS_MASTER`. Needs `redisSentinels`. */
  redisMaster: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-"')
    .optional(),
  /** Password of Redis (primary and replicas). Env `CS_REDIS_PASSWORD`. */
  redisPassword: z.string().optional(),
  /** Password of the sentinels. Env `CS_REDIS_SENTINEL_PASSWORD`. */
  redisSentinelPassword: z.string().optional(),
  /**
   * Replicas that must hold a write before it is answered "accepted" (`WAIT`).
   * Env `CS_MIN_REPLICAS`. Default: 1 behind sentinels or when the primary has
   * replicas, else 0 (no wait).
   */
  minReplicas: z.coerce.number().int().min(0).max(16).optional(),
  /** How long one `WAIT` for the replicas may take, ms. Env `CS_REPLICA_TIMEOUT_MS`. Default 2000. */
  replicaTimeoutMs: z.coerce.number().int().min(1).max(60_000).optional(),
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
  keyPrefix: z
    .string()
    .regex(/^[A-Za-z0-9_:/.-]*$/)
    .default(''),
});
export type ConnectionConfig = z.infer<typeof ConnectionConfigSchema>;

export type ConnectionFlags = Partial<Record<keyof ConnectionConfig, string | undefined>>;

/** Command-line flag of each setting, to name it in errors. */
const FLAG: Partial<Record<keyof ConnectionConfig, string>> = {
  redisUrl: '--redis-url',
  redisSentinels: '--redis-sentinels',
  redisMaster: '--redis-master',
  natsUrl: '--nats-url',
  minReplicas: '--min-replicas',
  replicaTimeoutMs: '--replica-timeout-ms',
  subjectPrefix: '--subject-prefix',
  keyPrefix: '--key-prefix',
};

const ENV: Record<keyof ConnectionConfig, string> = {
  redisUrl: 'CS_REDIS_URL',
  redisSentinels: 'CS_REDIS_SENTINELS',
  redisMaster: 'CS_REDIS_MASTER',
  redisPassword: 'CS_REDIS_PASSWORD',
  redisSentinelPassword: 'CS_REDIS_SENTINEL_PASSWORD',
  minReplicas: 'CS_MIN_REPLICAS',
  replicaTimeoutMs: 'CS_REPLICA_TIMEOUT_MS',
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
  const named = (key: keyof ConnectionConfig): string => `${FLAG[key] ? `${FLAG[key]}, ` : ''}env ${ENV[key]}`;
  if (raw.redisMaster !== undefined && raw.redisSentinels === undefined) {
    throw new InvalidInputError('configuration', `names the primary of sentinels, but no sentinels are given (${named('redisSentinels')})`, named('redisMaster'));
  }
  if (raw.redisSentinels !== undefined && raw.redisMaster === undefined) {
    throw new InvalidInputError('configuration', `needs the primary's name at the sentinels (${named('redisMaster')})`, named('redisSentinels'));
  }
  if (raw.redisSentinels !== undefined && raw.redisUrl !== undefined) {
    throw new InvalidInputError('configuration', `cannot be given with ${named('redisUrl')}: the sentinels name the primary; give one or the other`, named('redisSentinels'));
  }
  const parsed = ConnectionConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '') as keyof ConnectionConfig;
    throw new InvalidInputError('configuration', issue?.message ?? 'invalid', ENV[key] ? named(key) : key);
  }
  return parsed.data;
}

/** True when the user configured neither server, so `demo` may start local ones. */
export function hasConfiguredServers(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(flags.redisUrl ?? env.CS_REDIS_URL ?? flags.redisSentinels ?? env.CS_REDIS_SENTINELS ?? flags.natsUrl ?? env.CS_NATS_URL);
}

/**
 * The environment that gives a child process the same connections
 * (`CS_REDIS_URL` or the sentinels, never both; NATS, prefixes, replicas).
 */
export function connectionEnv(config: ConnectionConfig): Record<string, string> {
  const env: Record<string, string> = { CS_NATS_URL: config.natsUrl, CS_SUBJECT_PREFIX: config.subjectPrefix, CS_KEY_PREFIX: config.keyPrefix };
  if (config.redisSentinels?.length) {
    env.CS_REDIS_SENTINELS = config.redisSentinels.map((s) => (s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`)).join(',');
    env.CS_REDIS_MASTER = config.redisMaster ?? '';
  } else {
    env.CS_REDIS_URL = config.redisUrl;
  }
  if (config.minReplicas !== undefined) env.CS_MIN_REPLICAS = String(config.minReplicas);
  if (config.replicaTimeoutMs !== undefined) env.CS_REPLICA_TIMEOUT_MS = String(config.replicaTimeoutMs);
  return env;
}

/** `env` without the Redis settings, so {@link connectionEnv} alone decides a child's Redis (a URL and inherited sentinels would clash). */
export function withoutRedisEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const rest = { ...env };
  for (const name of ['CS_REDIS_URL', 'CS_REDIS_SENTINELS', 'CS_REDIS_MASTER']) delete rest[name];
  return rest;
}
