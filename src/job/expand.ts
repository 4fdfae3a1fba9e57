import { InvalidInputError } from '../core/errors';
import { isMapping } from '../core/safe-yaml';
import type { Plain } from '../core/safe-yaml';

/** More jobs than this from one file is a mistake, not a test plan. */
export const MAX_EXPANDED_JOBS = 10_000;

/** Keys whose list values are never expanded. */
const NOT_EXPANDED = new Set(['cluster']);
const ROLE_KEY = /^if role /;

type Mapping = { [key: string]: Plain };

/** lkp's revise_hash: mappings merge key by key, anything else is replaced. */
export function deepMerge(base: Plain, over: Plain): Plain {
  if (!isMapping(base) || !isMapping(over)) return over;
  const out: Mapping = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k] as Plain, v) : v;
  return out;
}

/** A place in the job that holds a list to expand: the path of keys to it. */
type ListPath = string[];

/**
 * The lists lkp expands, in document order: top-level parameter values, the
 * parameters of top-level programs (a mapping's values), and inside each
 * `if role` block its variables and its programs' parameters.
 */
function findLists(job: Mapping): ListPath[] {
  const paths: ListPath[] = [];
  const scan = (m: Mapping, at: string[], depth: number): void => {
    for (const [k, v] of Object.entries(m)) {
      if (depth === 0 && NOT_EXPANDED.has(k)) continue;
      if (Array.isArray(v)) paths.push([...at, k]);
      else if (isMapping(v) && (depth === 0 || (depth === 1 && ROLE_KEY.test(at[0] ?? '')))) scan(v, [...at, k], depth + 1);
    }
  };
  scan(job, [], 0);
  return paths;
}

function setAt(job: Mapping, path: ListPath, value: Plain): Mapping {
  const [head, ...rest] = path as [string, ...string[]];
  const copy: Mapping = { ...job };
  copy[head] = rest.length === 0 ? value : setAt(job[head] as Mapping, rest, value);
  return copy;
}

function getAt(job: Mapping, path: ListPath): Plain {
  let cur: Plain = job;
  for (const k of path) cur = isMapping(cur) ? (cur[k] ?? null) : null;
  return cur;
}

/** Cartesian product over every list, the first list varying slowest (lkp's order). */
function expandLists(job: Mapping, source: string): Mapping[] {
  let jobs: Mapping[] = [job];
  for (const path of findLists(job)) {
    const next: Mapping[] = [];
    for (const j of jobs) {
      const list = getAt(j, path) as Plain[];
      if (list.length === 0) throw new InvalidInputError(source, 'an empty list gives no job', path.join('.'));
      for (const v of list) {
        next.push(setAt(j, path, v));
        if (next.length > MAX_EXPANDED_JOBS) throw new InvalidInputError(source, `expands to more than ${MAX_EXPANDED_JOBS} jobs`, path.join('.'));
      }
    }
    jobs = next;
  }
  return jobs;
}

/**
 * What the lkp `submit` client does to a job file before the scheduler sees
 * it: a stream of several documents gives one job per later document, merged
 * over the first; then every list value gives one job per element.
 */
export function expandJob(docs: Plain[], source: string): Mapping[] {
  const [first, ...later] = docs;
  if (first === undefined) throw new InvalidInputError(source, 'is empty');
  docs.forEach((d, i) => {
    if (!isMapping(d)) throw new InvalidInputError(source, `document ${i + 1} is not a YAML mapping of parameters`);
  });
  const merged = later.length === 0 ? [first] : later.map((d) => deepMerge(first, d));
  return merged.flatMap((m) => expandLists(m as Mapping, source));
}
