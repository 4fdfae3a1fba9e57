import type { ClusterStore } from '../cluster/store';
import { compareJobIds } from '../cluster/store';
import { NotFoundError } from '../core/errors';
import { readResult } from './result';
import type { ClusterResult } from './result';

/** One row of `cluster-sync list` and `GET /clusters`. */
export interface ClusterRow {
  cluster: string;
  spec: string;
  state: ClusterResult['state'];
  verdict: ClusterResult['verdict'];
  end_cause: ClusterResult['end_cause'];
  created: number;
  ended_at?: number;
  /** This cluster's attempt number and how many attempts its cluster has had. */
  attempt: number;
  attempts: number;
  nodes: number;
  rerun_of?: string;
}

export interface ListQuery {
  /** Clusters created (open ones) or ended (ended ones) at or after this time, ms. Default: all kept. */
  sinceMs?: number;
  /** Only open or only ended clusters. Default both. */
  state?: 'open' | 'ended';
  /** At most this many rows, newest first. Default 200. */
  limit?: number;
}

/** Clusters with their verdicts, newest first: open ones by creation, ended ones by end (retention bounds both). */
export async function listClusters(store: ClusterStore, q: ListQuery = {}): Promise<ClusterRow[]> {
  const since = q.sinceMs ?? 0;
  const limit = q.limit ?? 200;
  const k = store.keys;
  const ids = new Set<string>();
  if (q.state !== 'ended') for (const id of await store.redis.zrevrangebyscore(k.openClusters, '+inf', since, 'LIMIT', 0, limit)) ids.add(id);
  if (q.state !== 'open') for (const id of await store.redis.zrevrangebyscore(k.endedClusters, '+inf', since, 'LIMIT', 0, limit)) ids.add(id);
  const rows: ClusterRow[] = [];
  for (const cid of [...ids].sort((a, b) => compareJobIds(b, a)).slice(0, limit)) {
    try {
      const r = await readResult(store, cid);
      const mine = r.attempts.find((a) => a.cluster === cid);
      rows.push({
        cluster: cid,
        spec: r.spec,
        state: r.state,
        verdict: r.verdict,
        end_cause: r.end_cause,
        created: mine?.created ?? r.created,
        ended_at: mine?.ended_at,
        attempt: mine?.attempt ?? 1,
        attempts: r.attempts.length,
        nodes: r.nodes.length,
        rerun_of: r.rerun_of,
      });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err; // deleted meanwhile
    }
  }
  return rows;
}
