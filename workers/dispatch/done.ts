import { Job } from 'bullmq';
import type { Msg } from 'nats';
import { errorMessage } from '../../src/core/errors';
import { isRedisUnavailable } from '../../src/core/redis-errors';
import { testboxQueueName } from '../../src/queue/queues';
import type { NodeJob } from '../../src/split/node-job';
import { DoneRequestSchema } from '../../src/bus/queue-messages';
import type { DoneReply } from '../../src/bus/queue-messages';
import { recordNodeEnd } from '../../src/results/node-end';
import { parseRequest } from './context';
import type { DispatchContext } from './context';

/**
 * `<prefix>.queue.<testbox>.done`: moves the node's job to completed or
 * failed, as the node says it ended, whichever process gets the request.
 */
export async function done(ctx: DispatchContext, msg: Msg): Promise<DoneReply> {
  const testbox = ctx.subjects.testboxOf(msg.subject);
  if (!testbox) return { ok: false, reason: `no testbox in subject ${msg.subject}` };
  const req = parseRequest(msg, DoneRequestSchema);
  if (typeof req === 'string') return { ok: false, reason: req };
  const missing: DoneReply = { ok: false, reason: `no node job ${req.job} in queue ${testboxQueueName(testbox)}` };
  const held = ctx.pool.held.get(req.job);
  if (!held && !(await ctx.pool.known(testbox))) return missing;
  const job = held?.job ?? ((await Job.fromId(ctx.pool.workerFor(testbox), req.job)) as Job<NodeJob> | undefined);
  if (!job) return missing;
  ctx.pool.held.delete(req.job);
  // Redis refused or could not be reached (a failover, out of memory): the job is still this process's
  // to keep locked and, past the end grace, to fail (workers/dispatcher.ts extendAll); the node is told
  // to ask again. Dropped from `held` here, it stayed active for ever once its node gave up.
  const refused = (err: unknown): DoneReply => {
    const reason = `could not end node job ${req.job}: ${errorMessage(err)}`;
    if (!isRedisUnavailable(err)) return { ok: false, reason };
    if (held && !ctx.pool.held.has(req.job)) ctx.pool.held.set(req.job, held);
    return { ok: false, reason, retryable: true };
  };
  const end = (lock: string): Promise<unknown> =>
    req.ok ? job.moveToCompleted({ outcome: req.outcome }, lock, false) : job.moveToFailed(new Error(`${req.outcome}: ${req.reason ?? 'no reason given'}`), lock, false);
  try {
    await end(req.lock);
  } catch (err) {
    if (isRedisUnavailable(err)) return refused(err);
    // BullMQ's lock lapsed (the holding process was stopped or died while the node ran): the job is
    // still active with no lock. The token recorded at take says whether this node holds it; then it
    // is ended without BullMQ's lock check ("0"), as the node says it ended.
    try {
      if (!(await lapsedHolder(ctx, job, req.lock))) return refused(err);
      await end('0');
      ctx.log.info({ job: req.job }, 'node job ended after its lock had lapsed (its dispatcher was stopped or died)');
    } catch (again) {
      return refused(again);
    }
  }
  ctx.log.info({ job: req.job, outcome: req.outcome, reason: req.reason }, 'node job ended');
  // Each program's exit and duration, kept with the cluster for its result (src/results).
  await recordNodeEnd(ctx.connection, ctx.pool.keys, job.data.cluster, req.job, { outcome: req.outcome, reason: req.reason, programs: req.programs ?? [], machine: req.machine }).catch(
    (err: unknown) => ctx.log.warn({ job: req.job, err: errorMessage(err) }, "could not record the node job's end for its result"),
  );
  return { ok: true };
}

/** Whether `job` is still active with BullMQ's lock lapsed, and `lock` is the token recorded when it was handed out. */
async function lapsedHolder(ctx: DispatchContext, job: Job<NodeJob>, lock: string): Promise<boolean> {
  const id = job.id ?? '';
  const [testbox, token] = ((await ctx.connection.hget(ctx.pool.keys.nodeLocks(job.data.cluster), id)) ?? '').split(' ');
  if (!testbox || token !== lock) return false;
  return !(await ctx.pool.locked(testbox, id)) && (await job.isActive());
}
