import { InvalidInputError } from './errors';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration as lkp-tests jobs write them: a bare number is seconds
 * (`runtime: 300`, `cluster_timeout: 28800`), or a number with a unit
 * (`300s`, `10m`, `8h`, `1d`, `250ms`). Returns milliseconds.
 */
export function parseDuration(value: unknown, field: string, source = 'duration'): number {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return Math.round(value * 1000);
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
    if (m && m[1] !== undefined) {
      const n = Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000);
      if (n > 0) return Math.round(n);
    }
  }
  throw new InvalidInputError(source, `expected a positive duration like 300, "300s", "10m" or "8h", got ${JSON.stringify(value)}`, field);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  // Round first, then split, so 7h59m59.6s is 8h0m, never 7h60m.
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  const m = Math.round(ms / 60_000);
  return `${Math.floor(m / 60)}h${m % 60}m`;
}
