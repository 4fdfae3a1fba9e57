import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidInputError } from '../core/errors';
import { LIMITS, isMapping, loadYamlDocuments } from '../core/safe-yaml';
import { LOCALHOST_SPECS, checkSpecName } from '../spec/cluster-spec';
import type { SubmitMessage } from './jobs-route';

/**
 * The spec a job names, read from a local directory so it can go inline.
 * Undefined for cs-localhost (or no `cluster:`); an error when the file's
 * documents name more than one spec.
 */
export function localSpecFor(jobText: string, source: string, dir: string): string | undefined {
  const names = new Set<string>();
  for (const doc of loadYamlDocuments(jobText, source, LIMITS.jobBytes)) {
    if (!isMapping(doc) || isMapping(doc.cluster_spec)) continue; // a job's own cluster_spec needs no file
    const c = doc.cluster;
    for (const n of Array.isArray(c) ? c : [c]) if (typeof n === 'string' && !LOCALHOST_SPECS.has(n)) names.add(n);
  }
  if (names.size === 0) return undefined;
  if (names.size > 1) throw new InvalidInputError(source, `names several cluster specs (${[...names].join(', ')}); give the scheduler --cluster-dir instead`, 'cluster');
  const name = checkSpecName([...names][0] as string, source);
  const file = path.join(dir, name);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(source, `cluster spec ${name} not found in ${dir}`, 'cluster', { cause: err });
  }
}

/** Node jobs as lines: a header per cluster, then one line per node job. */
export function formatSubmitted(messages: SubmitMessage[]): string[] {
  const lines: string[] = [];
  const total = new Set(messages.map((m) => m.cluster)).size;
  let current: string | undefined;
  for (const m of messages) {
    if (m.cluster !== current) {
      current = m.cluster;
      lines.push(`cluster ${m.cluster}  (job ${m.job_index + 1} of ${total}, spec ${m.spec})`);
    }
    lines.push(`  ${m.job_id.padEnd(10)} ${m.node_roles.padEnd(16)} queue ${m.queue.padEnd(24)} host ${m.host}`);
  }
  return lines;
}
