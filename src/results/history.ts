import type { PreparedCluster } from '../cluster/prepare';
import type { Plain } from '../core/safe-yaml';
import type { ClusterSpec } from '../spec/cluster-spec';
import type { NodeJobDraft } from '../split/node-job';
import { admissionOf } from '../admission/settings';
import { policyFromMeta, policyMeta } from './policy';

/**
 * A cluster's history in its meta hash: the submitted job (after expansion,
 * field `job`), its node job drafts (`drafts`: what a retry or a re-run
 * submits again), its policy, and its links:
 *
 * - `attempt` (1, 2, ...) and `attempt_of` (the first attempt's id) on every
 *   attempt after the first; `attempt:<n>` = the id of attempt n on the first;
 * - `rerun_of` on a re-run, `rerun:<id>` = its creation time on the original.
 */
export function historyMeta(p: PreparedCluster): Record<string, string | number> {
  return { ...policyMeta(p.policy), job: JSON.stringify(p.job), drafts: JSON.stringify(p.nodes), ...(p.lineage ?? {}) };
}

/** The cluster as it was prepared, read back from its meta, to submit it again with `lineage`. */
export function preparedFromMeta(cid: string, meta: Record<string, string>, lineage: Record<string, string | number>): PreparedCluster {
  if (!meta.drafts || !meta.job) throw new Error(`cluster ${cid} was submitted before jobs were kept with their clusters; submit its job file again`);
  const spec: ClusterSpec = { name: meta.spec ?? 'inline', localhost: meta.standalone === '1', switch: undefined, ip0: 1, hosts: [], warnings: [] };
  const job = JSON.parse(meta.job) as Plain;
  // The kept job's own admit_timeout and priority (checked at its first submit) hold for each attempt and re-run.
  const admission = admissionOf(typeof job === 'object' && job !== null && !Array.isArray(job) ? (job as Record<string, unknown>) : {}, `cluster ${cid}'s kept job`);
  return { index: 0, job, spec, nodes: JSON.parse(meta.drafts) as NodeJobDraft[], warnings: [], policy: policyFromMeta(meta), lineage, admission };
}

/** The first attempt of the cluster `cid` belongs to (itself when it is one). */
export function rootOf(cid: string, meta: Record<string, string>): string {
  return meta.attempt_of || cid;
}

/** The attempt ids listed in the first attempt's meta, in order (attempt 1 is the root itself). */
export function attemptsOf(root: string, rootMeta: Record<string, string>): string[] {
  const out = [root];
  for (let n = 2; rootMeta[`attempt:${n}`]; n++) out.push(rootMeta[`attempt:${n}`] as string);
  return out;
}

/** The re-runs of a cluster, oldest first. */
export function rerunsOf(meta: Record<string, string>): string[] {
  return Object.entries(meta)
    .filter(([f]) => f.startsWith('rerun:'))
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map(([f]) => f.slice(6));
}
