import { hostField } from '../cluster/store';
import type { ClusterStore } from '../cluster/store';
import type { NodeEntry } from '../cluster/view';
import { InvalidInputError, NotFoundError } from '../core/errors';
import type { LegacyQuery } from './legacy-query';
import type { LegacyReads } from './legacy-reads';

/**
 * Which node job a legacy request speaks for.
 *
 * Two lkp-tests flavours ask the same CGI path (DESIGN §3):
 * - Compass-CI's sends `job_id`: the node job is that id.
 * - intel's upstream sends no job_id, only `cluster=<spec name>` and
 *   `node=$HOSTNAME`: the node job is found by spec and host among the
 *   clusters of that spec (`Keys.specClusters`, each cluster's meta maps
 *   `host:<host>` to its node job), in this order:
 *   1. the newest open cluster where that host's node has not ended;
 *   2. the newest open cluster where it has ended (a daemon re-asking
 *      `wait_finish` after its own report while others still run);
 *   3. the newest ended cluster still kept (retention): the daemon keeps
 *      asking `wait_finish` after its cluster ended, and gets the answer.
 *   Two clusters of one spec open at once on the same hosts (the jobs of one
 *   expanded submit) cannot be told apart without job_id: the newest wins.
 */
export type LegacyFlavour = 'compass-ci' | 'intel';

export interface LegacyTarget {
  cluster: string;
  job: string;
  flavour: LegacyFlavour;
}

/** How many of a spec's newest clusters are looked at for a host. */
const SCAN_LIMIT = 500;

export async function identifyLegacyNode(store: ClusterStore, reads: LegacyReads, q: LegacyQuery): Promise<LegacyTarget> {
  if (q.job_id !== undefined) {
    const cluster = await reads.clusterOfJob(q.job_id);
    if (!cluster) throw new NotFoundError(`unknown job id ${q.job_id}`);
    return { cluster, job: q.job_id, flavour: 'compass-ci' };
  }
  if (!q.cluster || !q.node) {
    throw new InvalidInputError('query', 'is missing (lkp-tests sends job_id=$id, or cluster=<spec name>&node=$HOSTNAME without it)', 'job_id');
  }
  const found = await findByHost(store, q.cluster, q.node);
  if (!found) throw new NotFoundError(`no cluster of spec ${q.cluster} has a node on host ${q.node}`);
  return { ...found, flavour: 'intel' };
}

async function findByHost(store: ClusterStore, spec: string, host: string): Promise<{ cluster: string; job: string } | undefined> {
  const k = store.keys;
  const clusters = await store.redis.zrevrange(k.specClusters(spec), 0, SCAN_LIMIT - 1);
  if (clusters.length === 0) return undefined;
  const m = store.redis.multi();
  for (const cid of clusters) m.hmget(k.meta(cid), hostField(host), 'final').hget(k.clusterState, cid);
  const replies = (await m.exec()) ?? [];
  let openEnded: { cluster: string; job: string } | undefined;
  let ended: { cluster: string; job: string } | undefined;
  for (const [i, cid] of clusters.entries()) {
    const [job, final] = (replies[2 * i]?.[1] ?? []) as (string | null)[];
    const raw = replies[2 * i + 1]?.[1] as string | null | undefined;
    if (!job || !raw) continue;
    const hit = { cluster: cid, job };
    if (final) {
      ended ??= hit;
      continue;
    }
    const state = (JSON.parse(raw) as Record<string, NodeEntry>)[job]?.state ?? '';
    if (state !== 'finish' && state !== 'abort') return hit;
    openEnded ??= hit;
  }
  return openEnded ?? ended;
}
