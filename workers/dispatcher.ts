import { randomUUID } from 'node:crypto';
import { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Msg, NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import type { ZodError } from 'zod';
import { payloadLimit, respondBounded } from '../src/bus/bounded';
import { decodeText, encodeJson } from '../src/bus/connect';
import { describeZodError } from '../src/bus/messages';
import { WORKER_QUEUE_GROUP } from '../src/bus/subjects';
import type { Subjects } from '../src/bus/subjects';
import { isRedisUnavailable } from '../src/fold/redis-errors';
import { errorMessage } from '../src/core/errors';
import type { Keys } from '../src/core/keys';
import type { ClusterEvent } from '../src/fold/outcome';
import { testboxOfQueue, testboxQueueName } from '../src/queue/queues';
import type { NodeJob } from '../src/split/node-job';
import { DoneRequestSchema, TakeRequestSchema } from '../src/agent/queue-messages';
import type { DoneReply, TakeReply } from '../src/agent/queue-messages';
import type { AdmissionStore } from '../src/admission/admission-store';
import { admissionTake } from './admission-take';

export interface DispatcherOptions {
  /** How long a taken node job stays locked without being extended, ms. Default 30 000. */
  lockMs?: number;
  /** How often this process checks its testbox queues for stalled node jobs, ms. Default: lockMs. */
  stalledIntervalMs?: number;
  /**
   * After a cluster ends (finish or abort), how long its nodes have to report
   * their end before the dispatcher fails their jobs itself, ms. Covers a node
   * that took a job and never ran it. Default 60 000.
   */
  endGraceMs?: number;
  /**
   * Testbox queues this process keeps a BullMQ Worker open for (each holds a
   * Redis connection); past this the least recently used one that holds no
   * node job is closed. Default 64.
   */
  maxOpenQueues?: number;
  /** Admission (DESIGN §9): takes that name a machine are served by it. Default: none (every take first come, first served). */
  admission?: AdmissionStore;
  /** Told of each node job admission hands to a machine the first time (metrics): from submit to admission, ms. */
  onHanded?: (cluster: string, job: string, machine: string, waitedMs: number) => void;
}

interface Held {
  job: Job<NodeJob>;
  token: string;
  testbox: string;
}

/**
 * Hands node jobs to node agents: answers `<prefix>.queue.<testbox>.take`
 * from the BullMQ queue `tb-<testbox>` (manual processing: a Worker without
 * a processor) and `.done` by moving the job to completed or failed.
 *
 * Locks: the process that handed out a job extends its lock every half lock
 * period until the job ends. BullMQ's stalled check is not run on testbox
 * queues: a holder that is paused (SIGSTOP) or dies lets the lock lapse, the
 * job stays active (never handed out twice), and the node's `done`, checked
 * against the lock token recorded at take (`Keys.nodeLocks`), ends it as the
 * node really ended, whichever process gets it. A job stalled by an older
 * version (deferredFailure) is failed at the next take. A node aborted as
 * dead (its `abort` event says "no heartbeat") has its job failed with that
 * reason by the process that holds it, and so is a job whose cluster ended
 * while its node never reported the job's end (it took the job and died, or
 * never got the reply).
 */
export class Dispatcher {
  private readonly workers = new Map<string, Worker<NodeJob>>();
  private readonly held = new Map<string, Held>();
  private readonly subs: Subscription[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly graceTimers = new Set<NodeJS.Timeout>();
  private readonly lockMs: number;
  private readonly endGraceMs: number;
  private readonly stalledMs: number;
  private readonly maxOpen: number;
  private readonly admission: AdmissionStore | undefined;
  private readonly onHanded: DispatcherOptions['onHanded'];
  private closed = false;
  /** Counts lock extensions that succeeded (tests and metrics). */
  extensions = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly connection: Redis,
    private readonly keys: Keys,
    private readonly log: Logger,
    options: DispatcherOptions = {},
  ) {
    this.lockMs = options.lockMs ?? 30_000;
    this.stalledMs = options.stalledIntervalMs ?? this.lockMs;
    this.endGraceMs = options.endGraceMs ?? 60_000;
    this.maxOpen = options.maxOpenQueues ?? 64;
    this.admission = options.admission;
    this.onHanded = options.onHanded;
  }

  start(): void {
    const serve = (subject: string, handler: (msg: Msg) => Promise<unknown>): void => {
      this.subs.push(
        this.nc.subscribe(subject, {
          queue: WORKER_QUEUE_GROUP,
          callback: (err, msg) => {
            if (err) return;
            void handler(msg)
              // A refusal because of Redis (out of memory, restarting) says so: the agent asks again rather than quits.
              .catch((e: unknown) => ({ ok: false, reason: errorMessage(e), ...(isRedisUnavailable(e) ? { retryable: true as const } : {}) }))
              .then((reply) => respondBounded(this.nc, msg, reply, this.log));
          },
        }),
      );
    };
    serve(this.subjects.allTakes, (m) => this.take(m));
    serve(this.subjects.allDones, (m) => this.done(m));
    // Every process sees every event: only the holder of a dead node's job acts on it.
    this.subs.push(
      this.nc.subscribe(this.subjects.allEvents, {
        callback: (err, msg) => {
          if (err) return;
          try {
            void this.onEvent(JSON.parse(decodeText(msg.data)) as ClusterEvent);
          } catch {
            /* not an event */
          }
        },
      }),
    );
    this.timer = setInterval(() => void this.extendAll(), Math.max(50, Math.floor(this.lockMs / 2)));
  }

  /** Whether anything was ever queued for `testbox`: BullMQ writes a queue's meta hash with its first job. */
  private async queueExists(testbox: string): Promise<boolean> {
    return (await this.connection.exists(`${this.keys.bullPrefix}:${testboxQueueName(testbox)}:meta`)) === 1;
  }

  /**
   * The BullMQ Worker of a testbox queue, opened on first use and kept in
   * least-recently-used order; the caller has checked that the queue exists,
   * so a made-up testbox name never opens one.
   */
  private async workerFor(testbox: string): Promise<Worker<NodeJob>> {
    let w = this.workers.get(testbox);
    if (w) {
      this.workers.delete(testbox);
      this.workers.set(testbox, w);
    } else {
      this.closeIdleWorkers(this.maxOpen - 1);
      w = new Worker<NodeJob>(testboxQueueName(testbox), null, {
        connection: this.connection,
        prefix: this.keys.bullPrefix,
        lockDuration: this.lockMs,
        stalledInterval: this.stalledMs,
        maxStalledCount: 0,
      });
      w.on('error', (err) => this.log.error({ err, testbox }, 'dispatcher queue error'));
      // No stalled check: a node job's fate is the node's to tell (`done`), not a lock's. A holder that
      // was paused or died lets its locks lapse; the job stays active, never handed out twice, and the
      // node's `done` (checked against the lock token recorded at take) still ends it as it really ended.
      this.workers.set(testbox, w);
    }
    return w;
  }

  /** Closes least recently used Workers that hold no node job until at most `keep` are open. */
  private closeIdleWorkers(keep: number): void {
    const busy = new Set([...this.held.values()].map((h) => h.testbox));
    for (const [testbox, w] of this.workers) {
      if (this.workers.size <= keep) return;
      if (busy.has(testbox)) continue;
      this.workers.delete(testbox);
      w.close().catch((err: unknown) => this.log.debug({ testbox, err: errorMessage(err) }, 'closing an idle testbox queue failed'));
    }
  }

  private parse<T>(msg: Msg, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: ZodError } }): T | string {
    let body: unknown;
    try {
      body = JSON.parse(decodeText(msg.data));
    } catch {
      return 'request is not JSON';
    }
    const parsed = schema.safeParse(body);
    return parsed.success ? parsed.data : describeZodError(parsed.error);
  }

  private async take(msg: Msg): Promise<TakeReply> {
    const testbox = this.subjects.testboxOf(msg.subject);
    if (!testbox) return { ok: false, reason: `no testbox in subject ${msg.subject}` };
    const req = this.parse(msg, TakeRequestSchema);
    if (typeof req === 'string') return { ok: false, reason: req };
    const { machine } = req;
    if (machine !== undefined && this.admission) {
      const got = await admissionTake(this.admission, testbox, { ...req, machine }, (tb) => this.workerFor(tb));
      if (!('admitted' in got)) return got;
      if (got.fresh) this.onHanded?.(got.job.data.cluster, got.job.id ?? '', machine, got.waitedMs);
      return this.hand(got.job.id ?? '', got.job, got.lock, testbox, machine);
    }
    // A testbox nothing was ever queued for has no job: answered without opening anything for it.
    if (!this.workers.has(testbox) && !(await this.queueExists(testbox))) return { ok: true, job: null };
    const worker = await this.workerFor(testbox);
    for (;;) {
      const token = randomUUID();
      const job = (await worker.getNextJob(token, { block: false })) as Job<NodeJob> | undefined;
      if (!job?.id) return { ok: true, job: null };
      if (job.deferredFailure) {
        // It stalled (its holder died while a node ran it): BullMQ put it back only to be failed, never to run twice.
        await job.moveToFailed(new Error(job.deferredFailure), token, false);
        this.log.warn({ job: job.id, reason: job.deferredFailure }, 'stalled node job failed');
        continue;
      }
      const final = await this.connection.hget(this.keys.meta(job.data.cluster), 'final');
      if (final) {
        // Its cluster ended before any machine took it: ended with it, never handed out (DESIGN §9).
        await job.moveToFailed(new Error(`its cluster ${job.data.cluster} ${final === 'finish' ? 'finished' : 'aborted'} before any machine took this node job`), token, false);
        continue;
      }
      const reply: TakeReply = { ok: true, job: job.data, lock: token };
      const bytes = encodeJson(reply).length;
      const limit = payloadLimit(this.nc);
      if (bytes > limit) {
        // Submit refuses such jobs; one queued by an older scheduler, or for a server with a smaller
        // max_payload, is failed with the reason rather than left active with nobody to run it.
        const reason = `node job ${job.id} is ${bytes} bytes, over the ${limit} bytes this NATS server carries (its max_payload less headroom)`;
        await job.moveToFailed(new Error(`too large to hand out: ${reason}`), token, false);
        this.log.error({ job: job.id, bytes, limit }, 'node job too large for NATS; failed it');
        return { ok: false, reason };
      }
      try {
        await this.connection.hset(this.keys.nodeLocks(job.data.cluster), job.id, `${testbox} ${token}`);
      } catch (err) {
        // Taken but not handed (Redis refused the lock record): put it back for the next take rather than
        // leave it active with nobody to run it, to be failed as stalled.
        await job.moveToWait(token).catch((e: unknown) => this.log.error({ job: job.id, err: errorMessage(e) }, 'could not put back a node job whose take failed; it will be failed as stalled'));
        throw err;
      }
      // The take counts as the node's heartbeat until its own; its cluster counts as admitted.
      await this.admission?.fifoTaken(job.data.cluster, job.id);
      return this.hand(job.id, job, token, testbox, req.agent);
    }
  }

  private hand(id: string, job: Job<NodeJob>, token: string, testbox: string, agent: string | undefined): TakeReply {
    this.held.set(id, { job, token, testbox });
    this.log.info({ job: id, cluster: job.data.cluster, testbox, agent }, 'node job taken');
    return { ok: true, job: job.data, lock: token };
  }

  private async done(msg: Msg): Promise<DoneReply> {
    const testbox = this.subjects.testboxOf(msg.subject);
    if (!testbox) return { ok: false, reason: `no testbox in subject ${msg.subject}` };
    const req = this.parse(msg, DoneRequestSchema);
    if (typeof req === 'string') return { ok: false, reason: req };
    if (!this.held.has(req.job) && !this.workers.has(testbox) && !(await this.queueExists(testbox))) {
      return { ok: false, reason: `no node job ${req.job} in queue ${testboxQueueName(testbox)}` };
    }
    const worker = await this.workerFor(testbox);
    const job = this.held.get(req.job)?.job ?? ((await Job.fromId(worker, req.job)) as Job<NodeJob> | undefined);
    if (!job) return { ok: false, reason: `no node job ${req.job} in queue ${testboxQueueName(testbox)}` };
    this.held.delete(req.job);
    const end = (lock: string): Promise<unknown> =>
      req.ok ? job.moveToCompleted({ outcome: req.outcome }, lock, false) : job.moveToFailed(new Error(`${req.outcome}: ${req.reason ?? 'no reason given'}`), lock, false);
    try {
      await end(req.lock);
    } catch (err) {
      // BullMQ's lock lapsed (the holding process was stopped or died while the node ran): the job is
      // still active. The token recorded at take says whether this node holds it; then it is ended
      // without BullMQ's lock check ("0"), as the node says it ended.
      const recorded = /Missing lock/.test(errorMessage(err)) ? await this.connection.hget(this.keys.nodeLocks(job.data.cluster), req.job) : null;
      if (recorded?.split(' ')[1] !== req.lock) return { ok: false, reason: `could not end node job ${req.job}: ${errorMessage(err)}` };
      try {
        await end('0');
        this.log.info({ job: req.job }, 'node job ended after its lock had lapsed (its dispatcher was stopped or died)');
      } catch (again) {
        return { ok: false, reason: `could not end node job ${req.job}: ${errorMessage(again)}` };
      }
    }
    this.log.info({ job: req.job, outcome: req.outcome, reason: req.reason }, 'node job ended');
    return { ok: true };
  }

  private async onEvent(ev: ClusterEvent): Promise<void> {
    if (ev.type === 'resolution' && (ev.result === 'abort' || ev.barrier === 'finish')) {
      const ended = ev.result === 'abort' ? 'aborted' : 'finished';
      const timer = setTimeout(() => {
        this.graceTimers.delete(timer);
        const reason = `its cluster ${ended} ${this.endGraceMs} ms ago and the node never reported the job's end`;
        for (const [id, h] of [...this.held]) {
          if (h.job.data.cluster === ev.cluster) void this.fail(id, reason);
        }
        void this.failOrphans(ev.cluster, reason);
      }, this.endGraceMs);
      this.graceTimers.add(timer);
      return;
    }
    if (ev.type !== 'report' || ev.report !== 'abort' || !ev.reason?.startsWith('no heartbeat')) return;
    await this.fail(ev.job, `aborted: ${ev.reason}`);
  }

  /** Fails a node job this process holds, with the reason. */
  private async fail(id: string, reason: string): Promise<void> {
    const h = this.held.get(id);
    if (!h) return;
    this.held.delete(id);
    try {
      await h.job.moveToFailed(new Error(reason), h.token, false);
      this.log.warn({ job: id, reason }, 'node job failed by the dispatcher');
    } catch (err) {
      this.log.warn({ err, job: id }, 'could not fail a node job');
    }
  }

  /**
   * Fails the node jobs of an ended cluster that are still active with no
   * lock: their holder died (or is stopped) and so is their node. Every
   * process tries; BullMQ lets one succeed.
   */
  private async failOrphans(cluster: string, reason: string): Promise<void> {
    try {
      // Every node job of the cluster, not only those whose lock was recorded at take: a dispatcher
      // can die after BullMQ moved a job to active and before it recorded the lock or replied.
      const [locks, queuesRaw] = await Promise.all([this.connection.hgetall(this.keys.nodeLocks(cluster)), this.connection.hget(this.keys.meta(cluster), 'queues')]);
      const testboxes = new Map<string, string>();
      try {
        // meta `queues`: node job id -> its BullMQ queue, `tb-<testbox>`.
        for (const [id, q] of Object.entries(JSON.parse(queuesRaw ?? '{}') as Record<string, string>)) {
          const testbox = testboxOfQueue(q);
          if (testbox) testboxes.set(id, testbox);
        }
      } catch {
        /* a corrupt meta: the recorded locks are all we know */
      }
      for (const [id, value] of Object.entries(locks)) testboxes.set(id, value.split(' ')[0] ?? '');
      for (const [id, testbox] of testboxes) {
        if (this.held.has(id) || testbox === '') continue;
        const queue = testboxQueueName(testbox);
        if ((await this.connection.exists(`${this.keys.bullPrefix}:${queue}:${id}:lock`)) === 1) continue;
        const job = (await Job.fromId(await this.workerFor(testbox), id)) as Job<NodeJob> | undefined;
        if (!job || !(await job.isActive())) continue;
        await job.moveToFailed(new Error(reason), '0', false).then(
          () => this.log.warn({ job: id, reason }, 'node job failed by the dispatcher (its holder and its node are gone)'),
          () => undefined,
        );
      }
    } catch (err) {
      this.log.warn({ cluster, err: errorMessage(err) }, 'could not look for orphaned node jobs');
    }
  }

  private async extendAll(): Promise<void> {
    if (this.held.size === 0) return;
    // The end of a cluster reaches this process as a NATS event, which a NATS restart can lose: then the
    // grace timer never starts and a dead node's job would stay held, its lock extended, for ever. So each
    // extension also asks Redis when the held job's cluster ended (`cs/clusters/ended`).
    const overdue = await this.endedPastGrace([...this.held.values()].map((h) => h.job.data.cluster)).catch(() => new Map<string, string>());
    for (const [id, h] of [...this.held]) {
      const ended = overdue.get(h.job.data.cluster);
      if (ended) {
        await this.fail(id, `its cluster ${ended} ${this.endGraceMs} ms ago and the node never reported the job's end`);
        continue;
      }
      try {
        const ok = await h.job.extendLock(h.token, this.lockMs);
        if (ok) this.extensions++;
        else throw new Error('lock not held');
      } catch (err) {
        // Ended elsewhere (another process took the `done`) or lost: stop extending it.
        this.held.delete(id);
        this.log.debug({ job: id, err: errorMessage(err) }, 'stopped extending a node job lock');
      }
    }
  }

  /** The clusters among `clusters` that ended more than the end grace ago -> `aborted` / `finished`. */
  private async endedPastGrace(clusters: string[]): Promise<Map<string, string>> {
    const unique = [...new Set(clusters)];
    const pipe = this.connection.pipeline().time();
    for (const cid of unique) pipe.zscore(this.keys.endedClusters, cid).hget(this.keys.meta(cid), 'final');
    const replies = (await pipe.exec()) ?? [];
    const [sec, usec] = (replies[0]?.[1] ?? ['0', '0']) as [string, string];
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const out = new Map<string, string>();
    unique.forEach((cid, i) => {
      const at = replies[1 + 2 * i]?.[1] as string | null | undefined;
      const final = replies[2 + 2 * i]?.[1] as string | null | undefined;
      if (at !== null && at !== undefined && now - Number(at) > this.endGraceMs) out.set(cid, final === 'finish' ? 'finished' : 'aborted');
    });
    return out;
  }

  /** Testbox queues this process has a BullMQ Worker open for, least recently used first. */
  get openQueues(): string[] {
    return [...this.workers.keys()];
  }

  /** Node jobs whose locks this process holds. */
  get holding(): string[] {
    return [...this.held.keys()];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const t of this.graceTimers) clearTimeout(t);
    this.graceTimers.clear();
    await Promise.all(this.subs.map((s) => s.drain().catch(() => undefined)));
    await Promise.all([...this.workers.values()].map((w) => w.close(true).catch(() => undefined)));
    this.workers.clear();
    this.held.clear();
  }
}
