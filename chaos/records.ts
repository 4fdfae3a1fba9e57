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

/** Every cluster's recorded report ids, in one pass over the keys: cluster id -> ids. */
export async function foldedReportIds(store: ClusterStore): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  const prefix = store.keys.report('');
  let cursor = '0';
  do {
    const [next, keys] = await store.redis.scan(cursor, 'MATCH', store.keys.report('*'), 'COUNT', 10_000);
    cursor = next;
    for (const k of keys) {
      const rest = k.slice(prefix.length);
      const at = rest.lastIndexOf('@');
      const cid = rest.slice(at + 1);
      if (!out.has(cid)) out.set(cid, new Set());
      out.get(cid)!.add(rest.slice(0, at));
    }
  } while (cursor !== '0');
  return out;
}

export async function readRecord(store: ClusterStore, cid: string, jobs: string[], folded: Map<string, Set<string>>): Promise<ClusterRecord> {
  const view = await store.readCluster(cid).catch(() => undefined);
  const raw = await store.redis.xrange(store.keys.events(cid), '-', '+');
  const events = raw.map(([id, f]) => ({ ...(JSON.parse(f[1] as string) as ClusterEvent), id }));
  return { cid, jobs, view, events, folded: folded.get(cid) ?? new Set() };
}
