import type { ClusterStore } from '../src/cluster/store';
import type { ClusterView } from '../src/cluster/view';
import { BARRIERS } from '../src/core/states';
import type { ClusterEvent } from '../src/fold/outcome';
import type { QueueSet } from '../src/queue/queues';
import { NotFoundError, errorMessage } from '../src/core/errors';

/**
 * The servers' side of a chaos run, read after each cluster of a round
 * settled: its state, its event log, which report ids its fold recorded,
 * its node jobs' BullMQ records; and, after retention, what of it is left.
 * The one place that knows where these are kept, so a change of that
 * layout changes this file only.
 */
export interface NodeJobRecord {
  /** BullMQ's state: completed, failed, active, waiting, ... or unknown (no such job). */
  state: string;
  returnvalue?: unknown;
  failedReason?: string;
  /** When it was moved to active (handed out, or locked by the reaper to fail it), ms. */
  processedOn?: number;
}

/** A cluster's admission, from its meta (DESIGN §9). */
export interface AdmissionRecord {
  created?: number;
  /** When it was admitted (absent: never). */
  admitted?: number;
  /** `fifo` or `reports` when admitted by a FIFO take or its nodes' reports; absent when admission assigned it. */
  admittedBy?: string;
  /** Node job -> machine, written with `admitted`. */
  assign: Record<string, string>;
  /** Testbox -> node jobs. */
  needs: Record<string, string[]>;
  admitTimeoutMs?: number;
  endCause?: string;
}

export interface ClusterRecord {
  cid: string;
  jobs: string[];
  view: ClusterView | undefined;
  events: ClusterEvent[];
  /** Report ids the fold recorded for this cluster. */
  folded: Set<string>;
  /** Each node job's BullMQ record (absent: not read). */
  nodeJobs?: Map<string, NodeJobRecord>;
  admission?: AdmissionRecord;
  /** Why `view` is absent: the cluster is unknown, or the read kept failing (Redis down). */
  viewError?: string;
  /** `nodeJobs` were read past the cluster's retention: a record retention removed reads `unknown`. */
  nodeJobsLate?: boolean;
}

/** What retention must remove of a cluster, read from its meta while it is there. */
export interface RetentionTarget {
  cid: string;
  /** Node job id -> its BullMQ queue name (meta `queues`). */
  queues: Record<string, string>;
  spec: string | undefined;
  /** Its `submitted` event's id in the all-clusters stream. */
  submittedEvent: string | undefined;
  /** When it ended (ms, its last resolution), once it has. */
  endedAt?: number;
}

/** The report ids the fold recorded for each cluster (its per-cluster hash `cs/cluster/<cid>/reports`): cluster id -> ids. */
export async function foldedReportIds(store: ClusterStore, cids: readonly string[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const cid of cids) out.set(cid, new Set(await store.foldedReportIds(cid)));
  return out;
}

/**
 * A node job's state, then its hash: the job may end between the two reads (the dispatcher fails it
 * after the end grace), and the one script that ends it writes both. Read the other way round, a job
 * that failed in between read as failed with the reason it had before: none.
 */
export async function readNodeJob(queues: QueueSet, queue: string, id: string): Promise<NodeJobRecord> {
  const q = queues.get(queue);
  const state = await q.getJobState(id);
  const job = await q.getJob(id);
  if (!job || state === 'unknown') return { state: 'unknown' };
  return { state, returnvalue: job.returnvalue, failedReason: job.failedReason || undefined, ...(job.processedOn ? { processedOn: job.processedOn } : {}) };
}

/** A cluster's view; a read that fails other than "unknown cluster" (Redis restarting) is tried again for up to 20 s. */
async function readView(store: ClusterStore, cid: string): Promise<{ view?: ClusterView; error?: string }> {
  for (const until = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 250))) {
    try {
      return { view: await store.readCluster(cid) };
    } catch (err) {
      if (err instanceof NotFoundError || Date.now() > until) return { error: errorMessage(err) };
    }
  }
}

export async function readRecord(store: ClusterStore, cid: string, jobs: string[], folded: Map<string, Set<string>>, nodeJobs?: Map<string, NodeJobRecord>): Promise<ClusterRecord> {
  const { view, error } = await readView(store, cid);
  const raw = await store.redis.xrange(store.keys.events(cid), '-', '+');
  const events = raw.map(([id, f]) => ({ ...(JSON.parse(f[1] as string) as ClusterEvent), id }));
  return { cid, jobs, view, events, folded: folded.get(cid) ?? new Set(), ...(nodeJobs ? { nodeJobs } : {}), admission: await readAdmission(store, cid), ...(error ? { viewError: error } : {}) };
}

export async function readAdmission(store: ClusterStore, cid: string): Promise<AdmissionRecord> {
  const [created, admitted, by, assign, needs, timeout, cause] = await store.redis.hmget(
    store.keys.meta(cid),
    'created',
    'admitted',
    'admitted_by',
    'assign',
    'needs',
    'admit_timeout_ms',
    'end_cause',
  );
  const json = <T>(s: string | null | undefined, dflt: T): T => {
    try {
      return s ? (JSON.parse(s) as T) : dflt;
    } catch {
      return dflt;
    }
  };
  const num = (s: string | null | undefined): number | undefined => (s && Number.isFinite(Number(s)) ? Number(s) : undefined);
  return {
    created: num(created),
    admitted: num(admitted),
    ...(by ? { admittedBy: by } : {}),
    assign: json(assign, {}),
    needs: json(needs, {}),
    admitTimeoutMs: num(timeout),
    ...(cause ? { endCause: cause } : {}),
  };
}

/** What retention will have to remove of `cid`, and when it ended if it has; undefined when its meta is gone. */
export async function retentionTarget(store: ClusterStore, cid: string): Promise<RetentionTarget | undefined> {
  const [queues, spec, submitted] = await store.redis.hmget(store.keys.meta(cid), 'queues', 'spec', 'submitted_event');
  if (queues === null && spec === null) return undefined;
  const ended = (await store.endTimes([cid])).get(cid);
  let q: Record<string, string> = {};
  try {
    q = JSON.parse(queues ?? '{}') as Record<string, string>;
  } catch {
    /* a corrupt meta: the node jobs are not known */
  }
  return { cid, queues: q, spec: spec ?? undefined, submittedEvent: submitted ?? undefined, ...(ended !== undefined ? { endedAt: ended } : {}) };
}

/**
 * Every trace of the cluster still in Redis (README "Retention"): its keys
 * (`Keys.clusterKeys`), its fields in the cluster-state and id-map hashes,
 * its members of the open, submitting, ended, deadline, heartbeat and
 * spec-index sets, its `submitted` event, and its node jobs' BullMQ records. Empty when
 * retention removed it whole.
 */
export async function leftovers(store: ClusterStore, queues: QueueSet, t: RetentionTarget): Promise<string[]> {
  const k = store.keys;
  const r = store.redis;
  const out: string[] = [];
  for (const key of k.clusterKeys(t.cid)) if ((await r.exists(key)) === 1) out.push(`key ${key}`);
  if ((await r.hexists(k.clusterState, t.cid)) === 1) out.push(`${k.clusterState} field ${t.cid}`);
  const jobs = Object.keys(t.queues);
  for (const j of jobs) if ((await r.hexists(k.id2cluster, j)) === 1) out.push(`${k.id2cluster} field ${j}`);
  if ((await r.zscore(k.openClusters, t.cid)) !== null) out.push(`${k.openClusters} member ${t.cid}`);
  if ((await r.zscore(k.submitting, t.cid)) !== null) out.push(`${k.submitting} member ${t.cid}`);
  if ((await r.zscore(k.endedClusters, t.cid)) !== null) out.push(`${k.endedClusters} member ${t.cid}`);
  for (const b of BARRIERS) if ((await r.zscore(k.deadlines, `${t.cid} ${b}`)) !== null) out.push(`${k.deadlines} member "${t.cid} ${b}"`);
  for (const j of jobs) if ((await r.zscore(k.heartbeats, `${t.cid} ${j}`)) !== null) out.push(`${k.heartbeats} member "${t.cid} ${j}"`);
  if (t.spec !== undefined && (await r.zscore(k.specClusters(t.spec), t.cid)) !== null) out.push(`${k.specClusters(t.spec)} member ${t.cid}`);
  if (t.submittedEvent !== undefined && (await r.xrange(k.allEvents, t.submittedEvent, t.submittedEvent)).length > 0) out.push(`${k.allEvents} entry ${t.submittedEvent} (submitted)`);
  for (const [j, q] of Object.entries(t.queues)) {
    const rec = await readNodeJob(queues, q, j);
    if (rec.state !== 'unknown') out.push(`node job ${j} (${q}, ${rec.state})`);
  }
  return out;
}
