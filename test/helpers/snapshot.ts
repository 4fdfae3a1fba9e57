import type { Redis } from 'ioredis';

/**
 * A readable copy of every Redis key under a prefix, for "nothing changed"
 * assertions: each key is read by its type (hash fields and set members
 * sorted), so two snapshots are equal exactly when the data is.
 */
export type RedisSnapshot = Record<string, { type: string; value: unknown }>;

export interface SnapshotOptions {
  /** Keys to leave out (BullMQ's own housekeeping, which moves by itself). Default: none. */
  ignore?: RegExp;
}

/** `*`, `?`, `[`, `]` and `\` are glob characters in SCAN MATCH. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

async function readKey(redis: Redis, key: string, type: string): Promise<unknown> {
  switch (type) {
    case 'string':
      return redis.get(key);
    case 'hash': {
      const h = await redis.hgetall(key);
      return Object.fromEntries(Object.entries(h).sort(([a], [b]) => a.localeCompare(b)));
    }
    case 'list':
      return redis.lrange(key, 0, -1);
    case 'set':
      return (await redis.smembers(key)).sort();
    case 'zset':
      return redis.zrange(key, 0, -1, 'WITHSCORES');
    case 'stream':
      return redis.xrange(key, '-', '+');
    case 'none':
      return null; // gone between SCAN and the read
    default: {
      const dump = await redis.dumpBuffer(key);
      return dump?.toString('base64') ?? null;
    }
  }
}

/** The workers' sweep leases (the retention sweep's and admission's) are taken and lapse every period by themselves: no one's data. */
const SWEEP_LEASE = /cs\/(sweep\/lease|admit\/sweep-lease)$/;

export async function snapshotKeys(redis: Redis, prefix: string, options: SnapshotOptions = {}): Promise<RedisSnapshot> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of batch) if (!SWEEP_LEASE.test(k) && !options.ignore?.test(k)) keys.add(k);
  } while (cursor !== '0');
  const out: RedisSnapshot = {};
  for (const key of [...keys].sort()) {
    const type = await redis.type(key);
    if (type === 'none') continue;
    out[key] = { type, value: await readKey(redis, key, type) };
  }
  return out;
}

/** The keys that differ between two snapshots, each with what happened to it; empty when nothing changed. */
export function diffSnapshots(before: RedisSnapshot, after: RedisSnapshot): string[] {
  const out: string[] = [];
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = before[key];
    const b = after[key];
    if (!a) out.push(`+ ${key} (${b?.type})`);
    else if (!b) out.push(`- ${key} (${a.type})`);
    else if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`~ ${key} (${a.type})`);
  }
  return out.sort();
}
