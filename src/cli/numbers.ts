import { InvalidInputError } from '../core/errors';

/** The whole numbers a flag accepts. */
export interface IntRange {
  /** Smallest accepted value. Default 0. */
  min?: number;
  /** Largest accepted value. Default: none (up to 2^53 - 1). */
  max?: number;
  /** What the number is, for the error. Default "a whole number". */
  what?: string;
}

/** A TCP port, 0 meaning "any free one". */
export const PORT: IntRange = { min: 0, max: 65_535, what: 'a TCP port' };

/**
 * Parses the text of numeric flag `flag` as a whole number within `range`:
 * a number in decimal digits only, so `abc`, `NaN`, `1.5`, `-1`, `1e3`
 * and `` are refused, with an error naming the flag (the CLI exits 2).
 */
export function parseIntFlag(flag: string, text: string, range: IntRange = {}): number {
  const { min = 0, max, what = 'a whole number' } = range;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
    const bounds = max === undefined ? `of at least ${min}` : `${min}-${max}`;
    throw new InvalidInputError(flag, `expected ${what} ${bounds}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** {@link parseIntFlag} as a commander option parser: `.option('--n <n>', '...', intFlag('--n', { min: 1 }), 8)`. */
export function intFlag(flag: string, range: IntRange = {}): (text: string) => number {
  return (text) => parseIntFlag(flag, text, range);
}
