import type { ClusterStore } from '../cluster/store';
import { NotFoundError } from '../core/errors';
import { clusterEvents } from '../ops/cluster-summary';
import { END_CLASSES } from './end-cause';
import type { EndCause, EndKind, Verdict } from './end-cause';
import { attemptsOf, rerunsOf, rootOf } from './history';
import { nodeEndsOf } from './node-end';
import { barrierResults, nodeResults, syncResults } from './parts';
import type { NodeResult, StepResult } from './parts';
import { policyFromMeta } from './policy';
import type { ClusterPolicy } from './policy';
import { endCauseOf } from './retries';

export type { NodeResult, StepResult } from './parts';

/** One attempt of a cluster (a retry is a new attempt, with its own ids). */
export interface AttemptResult {
  attempt: number;
  cluster: string;
  state: 'open' | 'ended';
  /** Null while it is open. */
  verdict: Verdict | null;
  end_cause: EndCause | null;
  created: number;
  ended_at?: number;
  /** The abort's reason (the first barrier that resolved abort). */
  reason?: string;
}

/** What `GET /clusters/:id/result` and `cluster-sync result` answer (DESIGN §10). */
export interface ClusterResult {
  v: 1;
  /** The cluster asked for. */
  cluster: string;
  spec: string;
  /** `open` while the last attempt runs; `retrying` while a retry is due; `ended` once the verdict is final. */
  state: 'open' | 'retrying' | 'ended';
  /** The last attempt's verdict once `ended`, else null. */
  verdict: Verdict | null;
  end_cause: EndCause | null;
  end_kind: EndKind | null;
  abort_reason?: string;
  /** Who cancelled it (`cancelled by ...`). */
  cancelled_by?: string;
  policy: ClusterPolicy;
  attempts: AttemptResult[];
  /** Nodes, barriers and syncs below are of this attempt: the last. */
  attempt: number;
  attempt_cluster: string;
  created: number;
  ended_at?: number;
  nodes: NodeResult[];
  barriers: StepResult[];
  syncs: StepResult[];
  /** The cluster this one re-runs, and the re-runs of this one. */
  rerun_of?: string;
  reruns: string[];
}

interface AttemptDetail {
  summary: AttemptResult;
  meta: Record<string, string>;
  nodes: NodeResult[];
  barriers: StepResult[];
  syncs: StepResult[];
}

async function readAttempt(store: ClusterStore, cid: string, attempt: number): Promise<AttemptDetail> {
  const [view, meta, events] = await Promise.all([store.readCluster(cid), store.redis.hgetall(store.keys.meta(cid)), clusterEvents(store, cid)]);
  const policy = policyFromMeta(meta);
  const cause = view.final ? endCauseOf(meta) : undefined;
  const nodes = nodeResults(view, meta, events, nodeEndsOf(meta), policy, cause);
  const reason = view.barriers.find((b) => b.result === 'abort')?.reason;
  const endedAt = view.final ? Math.max(view.created, ...view.barriers.map((b) => b.at ?? 0)) : undefined;
  let verdict: Verdict | null = null;
  if (cause) verdict = cause === 'finished' ? (successHolds(policy, nodes) ? 'passed' : 'failed') : END_CLASSES[cause].verdict;
  return {
    summary: { attempt, cluster: cid, state: view.final ? 'ended' : 'open', verdict, end_cause: cause ?? null, created: view.created, ended_at: endedAt, reason },
    meta,
    nodes,
    barriers: barrierResults(view, events),
    syncs: syncResults(events, view.final !== undefined),
  };
}

/** Whether the nodes that the success policy names passed. */
export function successHolds(policy: ClusterPolicy, nodes: readonly NodeResult[]): boolean {
  const s = policy.success;
  if (s.mode === 'any') return nodes.some((n) => n.passed);
  const counted = s.mode === 'all' ? nodes : nodes.filter((n) => n.roles.split(' ').some((r) => s.roles.includes(r)));
  return counted.length > 0 && counted.every((n) => n.passed);
}

/**
 * The result of a cluster, with every attempt of it: read from what the
 * cluster keeps in Redis (state, meta, events, node ends), so it lives
 * exactly as long as the cluster (until retention deletes it).
 */
export async function readResult(store: ClusterStore, cid: string): Promise<ClusterResult> {
  const meta = await store.redis.hgetall(store.keys.meta(cid));
  if (!meta.token) throw new NotFoundError(`unknown cluster ${cid}`);
  const root = rootOf(cid, meta);
  const rootMeta = root === cid ? meta : await store.redis.hgetall(store.keys.meta(root));
  const ids = rootMeta.token ? attemptsOf(root, rootMeta) : [cid];
  const attempts: AttemptDetail[] = [];
  for (const [i, id] of ids.entries()) {
    try {
      attempts.push(await readAttempt(store, id, rootMeta.token ? i + 1 : Number(meta.attempt) || 1));
    } catch (err) {
      // An attempt retention removed already is left out; the others still tell their story.
      if (!(err instanceof NotFoundError) || id === cid) throw err;
    }
  }
  const present = attempts;
  const last = present.at(-1) as AttemptDetail;
  const cause = last.summary.end_cause;
  const policy = policyFromMeta(last.meta);
  let state: ClusterResult['state'] = last.summary.state;
  if (state === 'ended' && cause && END_CLASSES[cause].retried && last.summary.attempt <= policy.clusterRetries) state = 'retrying';
  return {
    v: 1,
    cluster: cid,
    spec: last.meta.spec ?? '',
    state,
    verdict: state === 'ended' ? last.summary.verdict : null,
    end_cause: cause,
    end_kind: cause ? END_CLASSES[cause].kind : null,
    abort_reason: last.summary.reason,
    cancelled_by: cause === 'cancelled' ? last.meta.ended_by : undefined,
    policy,
    attempts: present.map((a) => a.summary),
    attempt: last.summary.attempt,
    attempt_cluster: last.summary.cluster,
    created: present[0]?.summary.created ?? last.summary.created,
    ended_at: state === 'ended' ? last.summary.ended_at : undefined,
    nodes: last.nodes,
    barriers: last.barriers,
    syncs: last.syncs,
    rerun_of: meta.rerun_of || undefined,
    reruns: rerunsOf(meta),
  };
}
