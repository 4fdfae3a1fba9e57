import type { ClusterStore } from '../src/cluster/store';
import type { ClusterView } from '../src/cluster/view';
import type { ClusterEvent } from '../src/fold/outcome';

/**
 * The servers' side of a chaos run, read after each round: each cluster's
 * state, its event log, and which report ids its fold recorded. The one
 * place that knows where the fold keeps its dedupe records, so a change of
 * that layout (a per-cluster hash) changes this file only.
 */
export interface ClusterRecord {
  cid: string;
  jobs: string[];
  view: ClusterView | undefined;
  events: ClusterEvent[];
  /** Report ids the fold recorded for this cluster. */
  folded: Set<string>;
}

/** The report ids the fold recorded for each cluster (its per-cluster hash `cs/cluster/<cid>/reports`): cluster id -> ids. */
export async function foldedReportIds(store: ClusterStore, cids: readonly string[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const cid of cids) out.set(cid, new Set(await store.redis.hkeys(store.keys.reports(cid))));
  return out;
}

export async function readRecord(store: ClusterStore, cid: string, jobs: string[], folded: Map<string, Set<string>>): Promise<ClusterRecord> {
  const view = await store.readCluster(cid).catch(() => undefined);
  const raw = await store.redis.xrange(store.keys.events(cid), '-', '+');
  const events = raw.map(([id, f]) => ({ ...(JSON.parse(f[1] as string) as ClusterEvent), id }));
  return { cid, jobs, view, events, folded: folded.get(cid) ?? new Set() };
}
