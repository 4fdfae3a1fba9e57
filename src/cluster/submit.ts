import type { FlowJob } from 'bullmq';
import { errorMessage, ClusterSyncError, ErrorCode } from '../core/errors';
import type { QueueSet } from '../queue/queues';
import { testboxQueueName } from '../queue/queues';
import type { NodeJob } from '../split/node-job';
import type { ClusterEvent } from '../fold/outcome';
import type { SubmitEnd } from '../fold/scripts';
import type { PreparedCluster } from './prepare';
import { AdmissionStore } from '../admission/admission-store';
import { clusterRoles } from './store';
import { historyMeta } from '../results/history';
import type { ClusterStore } from './store';

/** Told about each cluster once it is enqueued, with its "submitted" event (to publish it live). */
export type SubmittedListener = (cluster: string, event: ClusterEvent) => void;

export interface SubmittedCluster {
  cluster: string;
  index: number;
  spec: string;
  jobs: NodeJob[];
  /** What the split ignored (unused spec keys, job roles no host has). */
  warnings: string[];
}

/**
 * A submit that failed part-way: `created` holds the clusters that were
 * created whole before the failure (each is queued and will run); the rest
 * were not created at all. Worth retrying for the rest.
 */
export class PartialSubmitError extends ClusterSyncError {
  constructor(
    readonly created: SubmittedCluster[],
    readonly total: number,
    cause: unknown,
  ) {
    super(
      ErrorCode.Internal,
      `created ${created.length} of ${total} clusters${created.length > 0 ? ` (${created.map((c) => c.cluster).join(', ')}, each queued whole)` : ''}; the others were not created: ${errorMessage(cause)}`,
      // Sent again whole, the clusters already created would be created twice: only a submit that created
      // nothing (and failed for a passing reason) may be retried (a retryable error is answered 503, which
      // `cluster-sync submit` sends again).
      { cause, retryable: created.length === 0 && cause instanceof ClusterSyncError && cause.retryable },
    );
  }
}

/** BullMQ options of a node job: kept after it ends, so its result can be read (retention removes it with its cluster). */
const NODE_JOB_OPTIONS = { removeOnComplete: { count: 10_000 }, removeOnFail: { count: 10_000 }, attempts: 1 } as const;

/**
 * Creates each prepared cluster, in an order that leaves nothing half-done
 * whatever instant the scheduler dies or Redis fails:
 *
 * 1. ids and token (a counter: nothing of the cluster exists yet);
 * 2. `create.lua`: state, id map, meta, the start deadline (in
 *    `cs/deadlines`), the "submitted" event, and the cluster's entry in the
 *    "submitting" zset — one atomic script, which checks its arguments
 *    before writing;
 * 3. every node job in one MULTI (BullMQ FlowProducer, across the testbox
 *    queues): all queued or none. So no node can take a job of a cluster
 *    that does not exist, nor of one that is missing a node;
 * 4. the cluster leaves the "submitting" zset: it is complete.
 *
 * If 3 fails, the cluster is removed again with plain commands (Redis
 * refuses MULTI when out of memory, never deletes). A crash between 2 and 4,
 * or a removal that failed, leaves the cluster in "submitting": the
 * workers' reaper finishes it (all node jobs queued) or removes it (none).
 * A failure part-way through several clusters throws {@link PartialSubmitError}
 * naming the clusters that were created.
 */
export async function submitClusters(store: ClusterStore, queues: QueueSet, prepared: PreparedCluster[], onSubmitted?: SubmittedListener): Promise<SubmittedCluster[]> {
  const out: SubmittedCluster[] = [];
  for (const p of prepared) {
    try {
      out.push(await submitOne(store, queues, p, onSubmitted));
    } catch (err) {
      if (out.length === 0 && prepared.length === 1) throw err;
      throw new PartialSubmitError(out, prepared.length, err);
    }
  }
  return out;
}

async function submitOne(store: ClusterStore, queues: QueueSet, p: PreparedCluster, onSubmitted?: SubmittedListener): Promise<SubmittedCluster> {
  const jobs = await store.assignIds(p.nodes);
  const first = jobs[0] as NodeJob;
  const cid = first.cluster;
  const { created, event } = await store.createCluster(jobs, historyMeta(p));
  const where = Object.fromEntries(jobs.map((j) => [j.job_id, testboxQueueName(j.queue)]));
  try {
    const flows: FlowJob[] = jobs.map((j) => ({ name: cid, queueName: testboxQueueName(j.queue), data: j, opts: { ...NODE_JOB_OPTIONS, jobId: j.job_id } }));
    await queues.flows.addBulk(flows);
  } catch (err) {
    await removeCluster(store, queues, cid, where).catch(() => undefined);
    throw new ClusterSyncError(ErrorCode.Internal, `could not enqueue the node jobs of cluster ${cid}: ${errorMessage(err)}`, { cause: err, retryable: true });
  }
  // A submit slower than the workers' --submit-grace may find that the reaper, which saw no node job
  // queued, removed the cluster meanwhile: then the jobs just queued go too, and the submit fails.
  let end: SubmitEnd | 'gone';
  try {
    end = await claimSubmit(store, cid, 'queued');
  } catch (err) {
    // Every node job is queued but the cluster is not marked complete (Redis refused the write, or the
    // connection broke): left alone, the reaper would find its node jobs queued and complete it, and a
    // cluster this submit reports as failed would run. Remove it (deletes pass even when Redis is full),
    // unless a node took one of its jobs already (first come, first served hands jobs out at once): then
    // removing the others would leave that node waiting for peers that are gone, so the cluster stays.
    const taken = await anyNodeJobTaken(queues, where).catch(() => undefined);
    const removed =
      taken === false &&
      (await removeCluster(store, queues, cid, where).then(
        () => true,
        () => false,
      ));
    const why = taken === true ? 'a node took one of them already' : taken === undefined ? 'could not tell whether a node took one of them' : 'could not remove it';
    // Only "nothing of it is left" may be retried: the scheduler answers a retryable error 503, which
    // `cluster-sync submit` sends again, and a cluster that may still run would then run twice.
    throw new ClusterSyncError(
      ErrorCode.Internal,
      removed
        ? `could not mark cluster ${cid} complete after queueing its node jobs (${errorMessage(err)}); it was removed, nothing of it is left`
        : `could not mark cluster ${cid} complete after queueing its node jobs (${errorMessage(err)}), and ${why}: the workers' reaper will complete it, so it may still run; see \`cluster-sync status ${cid}\` before submitting again`,
      { cause: err, retryable: removed },
    );
  }
  if (end === 'reaper' || (end === 'gone' && (await store.token(cid)) === undefined)) {
    await removeCluster(store, queues, cid, where).catch(() => undefined);
    throw new ClusterSyncError(
      ErrorCode.Internal,
      `cluster ${cid} was removed as half-written while its submit was still queueing its node jobs (slower than the workers' --submit-grace); nothing of it is left`,
      { retryable: true },
    );
  }
  // Complete: it waits for admission. Should this fail, the reaper finds every node job queued and enqueues it itself.
  await new AdmissionStore(store.redis, store.keys).enqueue(cid, jobs, p.admission).catch(() => undefined);
  onSubmitted?.(cid, { id: event, v: 1, type: 'submitted', cluster: cid, nodes: jobs.length, roles: clusterRoles(jobs), spec: p.spec.name, at: created });
  return { cluster: cid, index: p.index, spec: p.spec.name, jobs, warnings: p.warnings };
}

/**
 * Decides, once, how the submit of a cluster still in "submitting" ends: the first caller's `who` wins
 * (the submit, its node jobs queued; or the reaper, removing it); every caller gets the decision, or
 * `gone` once the cluster has left "submitting" (claim-submit.lua).
 */
export async function claimSubmit(store: ClusterStore, cid: string, who: SubmitEnd): Promise<SubmitEnd | 'gone'> {
  return store.redis.csClaimSubmit(store.keys.submitting, cid, who);
}

/** Whether a node took (or ended) any of these node jobs (id -> queue): one that is no longer waiting in its queue. */
async function anyNodeJobTaken(queues: QueueSet, where: Record<string, string>): Promise<boolean> {
  const states = await Promise.all(Object.entries(where).map(([job, queue]) => queues.get(queue).getJobState(job)));
  return states.some((s) => s === 'active' || s === 'completed' || s === 'failed');
}

/**
 * Removes a cluster whole: its node jobs from BullMQ first (a job that is running cannot be removed: that is an error, and the
 * cluster stays for a later try), then its keys. Safe to repeat. `known` adds node jobs (id -> queue) to those its meta names
 * (a submit knows its own after another removal deleted the meta).
 */
export async function removeCluster(store: ClusterStore, queues: QueueSet, cid: string, known: Record<string, string> = {}): Promise<void> {
  const where = { ...known, ...(await store.nodeQueues(cid)) };
  const removals = Object.entries(where).map(async ([job, queue]) => {
    const q = queues.get(queue);
    // remove() answers 0 both for "no such job" and for "locked": tell them apart.
    if ((await q.remove(job)) === 0 && (await q.getJobState(job)) !== 'unknown') throw new Error(`node job ${job} is locked (taken by a node)`);
  });
  const results = await Promise.allSettled(removals);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  await store.deleteCluster(cid, Object.keys(where));
}
