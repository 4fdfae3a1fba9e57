import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Msg } from 'nats';
import { neverTakenReason } from '../../src/admission/explain';
import { payloadLimit } from '../../src/bus/bounded';
import { encodeJson } from '../../src/bus/connect';
import { errorMessage } from '../../src/core/errors';
import { pause } from '../../src/core/pause';
import { isRedisUnavailable } from '../../src/core/redis-errors';
import type { NodeJob } from '../../src/split/node-job';
import { TakeRequestSchema } from '../../src/bus/queue-messages';
import type { TakeReply } from '../../src/bus/queue-messages';
import { parseRequest } from './context';
import { admissionTake } from '../admission-take';
import type { DispatchContext } from './context';

/**
 * `<prefix>.queue.<testbox>.take`: the next node job of the testbox's queue,
 * locked by a fresh token that is recorded (`Keys.nodeLocks`) before the job
 * is handed out, or `job: null` when there is none.
 */
export async function take(ctx: DispatchContext, msg: Msg): Promise<TakeReply> {
  const testbox = ctx.subjects.testboxOf(msg.subject);
  if (!testbox) return { ok: false, reason: `no testbox in subject ${msg.subject}` };
  const req = parseRequest(msg, TakeRequestSchema);
  if (typeof req === 'string') return { ok: false, reason: req };
  const { machine } = req;
  if (machine !== undefined && ctx.admission) {
    const conn = ctx.admission.redis;
    const mark = ctx.replication.mark(conn);
    const got = await admissionTake(ctx.admission, testbox, { ...req, machine }, (tb) => ctx.pool.workerFor(tb));
    if (!('admitted' in got)) return got;
    // The assignment and the take are on the admission connection: no failover may hand the job to a second machine.
    // Too few replicas: the error answers "retry", and the retried take gets the same job back (admit-take.lua).
    await ctx.replication.waitForReplicas(conn, mark);
    const id = got.job.id ?? '';
    if (got.fresh) ctx.onHanded?.(got.job.data.cluster, id, machine, got.waitedMs);
    ctx.pool.held.set(id, { job: got.job, token: got.lock, testbox });
    ctx.log.info({ job: id, cluster: got.job.data.cluster, testbox, machine }, 'node job taken (admitted)');
    return { ok: true, job: got.job.data, lock: got.lock };
  }
  // A testbox nothing was ever queued for has no job: answered without opening anything for it.
  if (!(await ctx.pool.known(testbox))) return { ok: true, job: null };
  const worker = ctx.pool.workerFor(testbox);
  for (;;) {
    const token = randomUUID();
    const mark = ctx.replication.mark(ctx.connection);
    const job = (await worker.getNextJob(token, { block: false })) as Job<NodeJob> | undefined;
    if (!job?.id) return { ok: true, job: null };
    if (job.deferredFailure) {
      // It stalled (its holder died while a node ran it): BullMQ put it back only to be failed, never to run twice.
      await job.moveToFailed(new Error(job.deferredFailure), token, false);
      ctx.log.warn({ job: job.id, reason: job.deferredFailure }, 'stalled node job failed');
      continue;
    }
    const final = await ctx.connection.hget(ctx.pool.keys.meta(job.data.cluster), 'final');
    if (final) {
      // Its cluster ended before any machine took it: ended with it, never handed out (DESIGN §9).
      await job.moveToFailed(new Error(neverTakenReason(job.data.cluster, final === 'finish' ? 'finished' : 'aborted')), token, false);
      continue;
    }
    const reply: TakeReply = { ok: true, job: job.data, lock: token };
    const bytes = encodeJson(reply).length;
    const limit = payloadLimit(ctx.nc);
    if (bytes > limit) {
      // Submit refuses such jobs; one queued by an older scheduler, or for a server with a smaller
      // max_payload, is failed with the reason rather than left active with nobody to run it.
      const reason = `node job ${job.id} is ${bytes} bytes, over the ${limit} bytes this NATS server carries (its max_payload less headroom)`;
      await job.moveToFailed(new Error(`too large to hand out: ${reason}`), token, false);
      ctx.log.error({ job: job.id, bytes, limit }, 'node job too large for NATS; failed it');
      return { ok: false, reason };
    }
    try {
      await ctx.connection.hset(ctx.pool.keys.nodeLocks(job.data.cluster), job.id, `${testbox} ${token}`);
      // The take counts as the node's heartbeat until its own; its cluster counts as admitted (its start deadline runs).
      await ctx.admission?.fifoTaken(job.data.cluster, job.id);
      // The take and its lock record are on the connection BullMQ took the job on: a failover must not hand it out twice.
      await ctx.replication.waitForReplicas(ctx.connection, mark);
    } catch (err) {
      // Taken but not handed (Redis refused the lock record or admission's record, or too few replicas hold it): put it back for the
      // next take rather than leave it active with nobody to run it. In the background: the agent is answered now and asks again.
      // (Admission's record refused out of memory used to leave both jobs of a cluster active, never handed, and the cluster
      // waiting with no start deadline: chaos seed 5, round 1.)
      void putBack(ctx, job, token);
      throw err;
    }
    ctx.pool.held.set(job.id, { job, token, testbox });
    ctx.log.info({ job: job.id, cluster: job.data.cluster, testbox, agent: req.agent }, 'node job taken');
    return reply;
  }
}

/** How long a node job whose take failed is tried to be put back while Redis is out of reach, ms: longer than a failover. */
const PUT_BACK_PATIENCE_MS = 60_000;

/**
 * Puts a node job whose take failed back in its queue's wait list. Node jobs
 * have no stalled check (their fate is their node's to tell), so one left
 * active here would never be handed out, and its cluster, never admitted,
 * would never start nor end. When the take failed because of a failover,
 * Redis is out of reach for seconds (tried again meanwhile), and the job's
 * lock may have lapsed by then: a job still active with no lock is held by
 * nobody, and is put back without the lock check (BullMQ's token "0"; the
 * script moves it only if it is still active). Never rejects.
 */
async function putBack(ctx: DispatchContext, job: Job<NodeJob>, token: string): Promise<void> {
  const giveUp = Date.now() + PUT_BACK_PATIENCE_MS;
  let lock = token;
  for (let attempt = 1; ; attempt++) {
    try {
      await job.moveToWait(lock);
      if (attempt > 1) ctx.log.info({ job: job.id, attempts: attempt }, 'node job whose take failed put back');
      return;
    } catch (err) {
      if (lock !== '0' && /^Missing lock for job/.test(errorMessage(err))) {
        lock = '0';
        continue;
      }
      if (!isRedisUnavailable(err) || Date.now() > giveUp) {
        ctx.log.error({ job: job.id, err: errorMessage(err) }, 'could not put back a node job whose take failed; it stays active until its cluster ends');
        return;
      }
      await pause(Math.min(100 * 2 ** attempt, 2000));
    }
  }
}
