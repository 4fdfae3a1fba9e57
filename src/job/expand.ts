import { InvalidInputError } from '../core/errors';
import { isMapping } from '../core/safe-yaml';
import type { Plain } from '../core/safe-yaml';

/**
 * Expansion as the lkp `submit` client does it (lkp-tests `lib/job.rb`,
 * `Job#each_jobs` and `Job#each_job`), checked against its source:
 *
 * - The first document of a YAML stream is a job of its own. Every later
 *   document gives one more job: a fresh copy of the first with the later
 *   document's top-level keys put over it (`@job.merge!(hash)`: a key the
 *   later document names is replaced whole, not merged inside).
 * - Then each job is expanded: the first list found walking the job in
 *   document order (a key before what is inside its value) gives one job per
 *   element, and each of those is walked again from the top. So the first
 *   list varies slowest, and a list inside a chosen element expands too.
 *
 * lkp expands only the keys it knows as program names and program options
 * from its scripts tree; without the tree we expand every list except those
 * lkp accumulates instead of expanding (`mail_to`, `mail_cc`, `constraints`,
 * `need_*`, and `KEY+` / `KEY-` revisions). `{{ ruby }}` templates are not
 * evaluated: they stay text.
 */

/** More jobs than this from one file is a mistake, not a test plan. */
export const MAX_EXPANDED_JOBS = 10_000;

type Mapping = { [key: string]: Plain };

const ACCUMULATIVE = new Set(['mail_to', 'mail_cc', 'constraints']);
/** Not job parameters but data: a job's own cluster spec (its hosts' roles and macs are lists). */
const NOT_EXPANDED = new Set(['cluster_spec']);

function expandable(key: string): boolean {
  return !ACCUMULATIVE.has(key) && !key.startsWith('need_') && !key.endsWith('+') && !key.endsWith('-');
}

/** lkp's merge of a later document over the first: top-level keys replace. */
export function mergeOver(first: Mapping, later: Mapping): Mapping {
  return { ...first, ...later };
}

/** Path of keys to the first list to expand, walking keys before their values. */
function firstList(m: Mapping, at: string[]): string[] | undefined {
  for (const [k, v] of Object.entries(m)) {
    if (at.length === 0 && NOT_EXPANDED.has(k)) continue;
    if (Array.isArray(v) && expandable(k)) return [...at, k];
    if (isMapping(v)) {
      const inner = firstList(v, [...at, k]);
      if (inner) return inner;
    }
  }
  return undefined;
}

function setAt(job: Mapping, path: string[], value: Plain): Mapping {
  const [head, ...rest] = path as [string, ...string[]];
  const copy: Mapping = { ...job };
  copy[head] = rest.length === 0 ? value : setAt(job[head] as Mapping, rest, value);
  return copy;
}

function getAt(job: Mapping, path: string[]): Plain {
  let cur: Plain = job;
  for (const k of path) cur = isMapping(cur) ? (cur[k] ?? null) : null;
  return cur;
}

function expandLists(job: Mapping, source: string, out: Mapping[]): void {
  const path = firstList(job, []);
  if (!path) {
    if (out.length >= MAX_EXPANDED_JOBS) throw new InvalidInputError(source, `expands to more than ${MAX_EXPANDED_JOBS} jobs`);
    out.push(job);
    return;
  }
  const list = getAt(job, path) as Plain[];
  if (list.length === 0) throw new InvalidInputError(source, 'an empty list gives no job', path.join('.'));
  for (const v of list) expandLists(setAt(job, path, v), source, out);
}

/**
 * What the lkp `submit` client does to a job file before the scheduler sees
 * it (see the top of this file). Returns the jobs in lkp's order.
 */
export function expandJob(docs: Plain[], source: string): Mapping[] {
  const [first, ...later] = docs;
  if (first === undefined) throw new InvalidInputError(source, 'is empty');
  docs.forEach((d, i) => {
    if (!isMapping(d)) throw new InvalidInputError(source, `document ${i + 1} is not a YAML mapping of parameters`);
  });
  const base = first as Mapping;
  const jobs = [base, ...later.map((d) => mergeOver(base, d as Mapping))];
  const out: Mapping[] = [];
  for (const j of jobs) expandLists(j, source, out);
  return out;
}
