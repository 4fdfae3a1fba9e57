import type { Redis } from 'ioredis';

/** Calls per command, from `INFO commandstats` (commands run inside Lua scripts included). */
export type CommandCounts = Record<string, number>;

export async function commandCounts(redis: Redis): Promise<CommandCounts> {
  const text = await redis.info('commandstats');
  const out: CommandCounts = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

/** What ran between two samples, without the INFO calls that took them. */
export function countsDelta(before: CommandCounts, after: CommandCounts): CommandCounts {
  const out: CommandCounts = {};
  for (const [cmd, n] of Object.entries(after)) {
    if (cmd === 'info') continue;
    const d = n - (before[cmd] ?? 0);
    if (d > 0) out[cmd] = d;
  }
  return out;
}

export function total(counts: CommandCounts): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** The busiest commands, `name=calls` joined, for a table cell. */
export function topCommands(counts: CommandCounts, n = 6, per = 1): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([c, k]) => `${c}=${Number((k / per).toFixed(1))}`)
    .join(' ');
}

/** Redis server CPU seconds so far (user + sys), from `INFO cpu`. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const text = await redis.info('cpu');
  const get = (f: string): number => Number(new RegExp(`^${f}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0);
  return get('used_cpu_user') + get('used_cpu_sys');
}
