import yaml from 'js-yaml';
import { InvalidInputError, errorMessage } from './errors';

/** Bounds on what we accept from a user's YAML or JSON. */
export const LIMITS = {
  /** A job file or request body, bytes (DESIGN §8). */
  jobBytes: 1024 * 1024,
  /** A cluster spec file, bytes. */
  specBytes: 1024 * 1024,
  /** Nodes (scalars, sequences, mappings) after aliases are expanded. Stops "billion laughs" documents. */
  maxNodes: 100_000,
  /** Nesting depth. */
  maxDepth: 64,
} as const;

export type Plain = null | boolean | number | string | Plain[] | { [key: string]: Plain };

const FORBIDDEN_KEYS = new Set(['__proto__']);

/**
 * Copies a loaded document into plain data, counting every node it visits so
 * that a small document whose aliases expand to millions of nodes fails fast
 * instead of eating memory later. Also rejects `__proto__` keys, which cannot
 * be carried through JavaScript objects as data.
 */
export function toPlain(value: unknown, source: string, budget = { nodes: LIMITS.maxNodes }, path = '', depth = 0): Plain {
  if (--budget.nodes < 0) {
    throw new InvalidInputError(source, `document expands to more than ${LIMITS.maxNodes} nodes (an alias bomb?)`);
  }
  if (depth > LIMITS.maxDepth) throw new InvalidInputError(source, `nested deeper than ${LIMITS.maxDepth} levels`, path || undefined);
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') {
    // A value with a NUL byte cannot reach a program's environment or argument list intact.
    if (value.includes('\0')) throw new InvalidInputError(source, 'values may not contain NUL bytes', path || undefined);
    return value;
  }
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidInputError(source, 'numbers must be finite', path || undefined);
    return value;
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v, i) => toPlain(v, source, budget, `${path}[${i}]`, depth + 1));
  if (typeof value === 'object') {
    const out: { [key: string]: Plain } = {};
    for (const key of Object.keys(value)) {
      const at = path ? `${path}.${key}` : key;
      if (FORBIDDEN_KEYS.has(key)) throw new InvalidInputError(source, `key "${key}" is not allowed`, at);
      if (key.includes('\0')) throw new InvalidInputError(source, 'keys may not contain NUL bytes', JSON.stringify(at));
      out[key] = toPlain((value as Record<string, unknown>)[key], source, budget, at, depth + 1);
    }
    return out;
  }
  throw new InvalidInputError(source, `unsupported value of type ${typeof value}`, path || undefined);
}

/** Loads every document of a YAML stream (JSON is YAML too) with the safe schema, bounded. */
export function loadYamlDocuments(text: string, source: string, maxBytes: number = LIMITS.jobBytes): Plain[] {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw new InvalidInputError(source, `is ${bytes} bytes; the limit is ${maxBytes}`);
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text, undefined, { schema: yaml.DEFAULT_SCHEMA, filename: source, json: false });
  } catch (err) {
    throw new InvalidInputError(source, `not valid YAML: ${errorMessage(err).split('\n')[0]}`, undefined, { cause: err });
  }
  const budget = { nodes: LIMITS.maxNodes };
  return docs.filter((d) => d !== null && d !== undefined).map((d) => toPlain(d, source, budget));
}

export function isMapping(value: Plain | undefined): value is { [key: string]: Plain } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
