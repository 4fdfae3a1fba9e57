import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterSyncError, ErrorCode, InvalidInputError } from '../core/errors';
import { LIMITS, isMapping, loadYamlDocuments } from '../core/safe-yaml';
import { LOCALHOST_SPECS, checkSpecName } from '../spec/cluster-spec';
import type { SubmitMessage } from './jobs-route';

export interface SubmitRequest {
  /** Scheduler base URL, e.g. `http://127.0.0.1:3000`. */
  server: string;
  token: string;
  /** The job file's text. */
  job: string;
  /** Spec text sent inline; without it the scheduler's --cluster-dir is used. */
  clusterSpec?: string;
}

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

/** POSTs a job to the scheduler and returns its node jobs; a refusal throws with the scheduler's reason. */
export async function submitJob(req: SubmitRequest): Promise<SubmitMessage[]> {
  const url = new URL('/jobs', req.server);
  const body = req.clusterSpec === undefined ? req.job : JSON.stringify({ job: req.job, cluster_spec: req.clusterSpec });
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${req.token}`, 'content-type': req.clusterSpec === undefined ? 'application/yaml' : 'application/json' },
      body,
    });
  } catch (err) {
    throw new ClusterSyncError(ErrorCode.NoResponders, `cannot reach the scheduler at ${url.origin} (is "cluster-sync scheduler" running?)`, { cause: err, retryable: true });
  }
  const text = await res.text();
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new ClusterSyncError(ErrorCode.Internal, `scheduler answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}`);
  }
  const messages = Array.isArray(answer) ? (answer as SubmitMessage[]) : [];
  if (!res.ok) {
    const reason = messages[0]?.message ?? text.slice(0, 200);
    throw res.status === 400 ? new InvalidInputError('scheduler', reason) : new ClusterSyncError(ErrorCode.Rejected, `scheduler answered ${res.status}: ${reason}`);
  }
  return messages;
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
