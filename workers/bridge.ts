import type { Msg, NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import { decodeText, encodeJson } from '../src/bus/connect';
import { MAX_REPORT_BYTES, ReportSchema, describeZodError } from '../src/bus/messages';
import type { Report, ReportReply } from '../src/bus/messages';
import { WORKER_QUEUE_GROUP } from '../src/bus/subjects';
import type { Subjects } from '../src/bus/subjects';
import { MembershipCache } from '../src/cluster/membership-cache';
import { NodeInfoChecker } from '../src/cluster/node-info';
import type { ClusterStore, MembershipRefusal } from '../src/cluster/store';
import { RefusalCode } from '../src/core/refusal-codes';
import { errorMessage } from '../src/core/errors';
import { enqueueReports } from '../src/fold/batch';
import type { FoldOutcome } from '../src/fold/outcome';
import type { QueueSet } from '../src/queue/queues';
import type { WorkerEvents } from './events';
import { RepeatLog } from './repeat-log';

export interface BridgeOptions {
  /** Most reports in one BullMQ job (one fold-batch call). Default 64. */
  maxBatchReports?: number;
  /** Most bytes of reports (as received) in one BullMQ job. Default 256 KiB. */
  maxBatchBytes?: number;
  /** Reports waiting for the next add beyond which new ones are answered "retry" at once. Default 10 000. */
  maxWaiting?: number;
}

interface Waiting {
  msg: Msg;
  report: Report;
  bytes: number;
}

/**
 * NATS -> BullMQ, with group commit (DESIGN §5 "Batches"). Each report
 * request is checked at once (size, JSON, schema, subject) and waits for the
 * next add; the bridge keeps one add in flight, and the reports that arrive
 * meanwhile go into the next one as one BullMQ job (several, past the caps).
 * The (cluster, job, token) triples not seen before are checked once per
 * round, all in one pipeline, before its adds.
 * A report's reply goes out only after the add that carries it returned, so an
 * accepted report is durable in Redis; while Redis refuses the add, every
 * report of it is answered "retry". A lone report is a batch of one: it is
 * added in the same event-loop turn it arrived in, no timer.
 * Workers share a queue group: each report reaches one bridge. Heartbeats
 * are folded by the bridge itself, not queued (see {@link ReportBridge.beat}).
 */
export class ReportBridge {
  private sub: Subscription | undefined;
  private readonly members = new MembershipCache();
  private readonly info = new NodeInfoChecker(async (cid, job) => (await this.store.readCluster(cid)).nodes.find((n) => n.job === job));
  private waiting: Waiting[] = [];
  private flushing: Promise<void> | undefined;
  private kicked = false;
  private readonly repeats: RepeatLog;
  private readonly maxReports: number;
  private readonly maxBytes: number;
  private readonly maxWaiting: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly store: ClusterStore,
    private readonly queues: QueueSet,
    private readonly events: WorkerEvents,
    private readonly log: Logger,
    options: BridgeOptions = {},
  ) {
    this.repeats = new RepeatLog(log);
    this.maxReports = options.maxBatchReports ?? 64;
    this.maxBytes = options.maxBatchBytes ?? 256 * 1024;
    this.maxWaiting = options.maxWaiting ?? 10_000;
  }

  start(): void {
    this.sub = this.nc.subscribe(this.subjects.allReports, {
      queue: WORKER_QUEUE_GROUP,
      callback: (err, msg) => {
        if (err) {
          this.log.error({ err }, 'report subscription failed');
          return;
        }
        this.handle(msg);
      },
    });
  }

  private reply(msg: Msg, reply: ReportReply): void {
    if (msg.reply) msg.respond(encodeJson(reply));
  }

  private reject(msg: Msg, code: RefusalCode, reason: string, report?: Partial<Report>): void {
    this.log.warn({ code, reason, subject: msg.subject, job: report?.job, report: report?.id }, 'report rejected');
    this.events.emit('rejected', code, reason);
    this.reply(msg, { ok: false, code, reason });
  }

  /** Checks one report request and queues it for the next add. */
  handle(msg: Msg): void {
    if (msg.data.length > MAX_REPORT_BYTES) {
      this.reject(msg, RefusalCode.TooLarge, `report is ${msg.data.length} bytes; the limit is ${MAX_REPORT_BYTES}`);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(decodeText(msg.data));
    } catch {
      this.reject(msg, RefusalCode.Invalid, 'report is not JSON');
      return;
    }
    const parsed = ReportSchema.safeParse(body);
    if (!parsed.success) {
      this.reject(msg, RefusalCode.Invalid, describeZodError(parsed.error));
      return;
    }
    const report = parsed.data;
    const subjectCluster = this.subjects.clusterOf(msg.subject);
    if (subjectCluster !== report.cluster) {
      this.reject(msg, RefusalCode.OtherCluster, `report for cluster ${report.cluster} sent on the subject of cluster ${subjectCluster ?? '?'}`, report);
      return;
    }
    if (this.waiting.length >= this.maxWaiting) {
      this.reply(msg, { ok: false, code: RefusalCode.Unavailable, reason: `this worker has ${this.waiting.length} reports waiting to be enqueued; try again`, retryable: true });
      return;
    }
    this.waiting.push({ msg, report, bytes: msg.data.length });
    this.kick();
  }

  /**
   * Starts a flush unless one runs. The start waits for the end of the
   * current task (a microtask, not a timer), so the reports that NATS handed
   * over in one read go out together.
   */
  private kick(): void {
    if (this.flushing || this.kicked) return;
    this.kicked = true;
    queueMicrotask(() => {
      this.kicked = false;
      if (this.flushing || this.waiting.length === 0) return;
      this.flushing = this.flush().finally(() => (this.flushing = undefined));
    });
  }

  /**
   * Takes every waiting report, checks the triples not seen before in one
   * pipeline, then adds the accepted ones in batches up to the caps, one add
   * at a time. Reports that arrive meanwhile wait for the next round.
   */
  private async flush(): Promise<void> {
    while (this.waiting.length > 0) {
      const round = this.waiting.splice(0);
      let accepted: Waiting[];
      try {
        accepted = await this.checkMembers(round);
      } catch (err) {
        this.unavailable(round, err);
        continue;
      }
      const beats = accepted.filter((w) => w.report.state === 'heartbeat');
      const reports = beats.length === 0 ? accepted : accepted.filter((w) => w.report.state !== 'heartbeat');
      const beating = beats.length > 0 ? this.beat(beats) : undefined;
      while (reports.length > 0) await this.commit(this.take(reports));
      await beating;
    }
  }

  /**
   * Heartbeats are folded here, in one fold-batch call per round, not queued:
   * a heartbeat only moves its node's entry in `cs/heartbeats` (a repeat
   * does no harm, and it has no report record, event or answer), so a BullMQ
   * job's lifecycle (~30 Redis commands for a lone one) would be spent on
   * one ZADD. They are most of a lab's reports: one per node every 5 s for
   * the whole test. The node hears "accepted" once the fold returned.
   */
  private async beat(beats: Waiting[]): Promise<void> {
    const started = performance.now();
    let outcomes: FoldOutcome[];
    try {
      outcomes = await this.store.foldBatch(beats.map((w) => w.report));
    } catch (err) {
      this.unavailable(beats, err);
      return;
    }
    const ms = performance.now() - started;
    beats.forEach((w, i) => {
      const outcome = outcomes[i] ?? ({ ok: false, code: RefusalCode.Invalid, reason: 'no outcome from the fold' } as const);
      if (!outcome.ok) {
        this.reject(w.msg, outcome.code, outcome.reason, w.report);
        return;
      }
      this.reply(w.msg, { ok: true, id: w.report.id });
      this.events.emit('folded', w.report, outcome, ms);
    });
  }

  /** The next batch: the oldest of `from`, up to the caps (at least one), taken out of it. */
  private take(from: Waiting[]): Waiting[] {
    let n = 0;
    let bytes = 0;
    while (n < from.length && n < this.maxReports) {
      const b = (from[n] as Waiting).bytes;
      if (n > 0 && bytes + b > this.maxBytes) break;
      bytes += b;
      n++;
    }
    return from.splice(0, n);
  }

  private async commit(batch: Waiting[]): Promise<void> {
    try {
      await enqueueReports(
        this.queues,
        batch.map((w) => w.report),
      );
      for (const w of batch) this.reply(w.msg, { ok: true, id: w.report.id });
    } catch (err) {
      this.unavailable(batch, err);
    }
  }

  /** Redis could not take the reports (out of memory, down): each is answered "retry". */
  private unavailable(batch: Waiting[], err: unknown): void {
    this.repeats.error('could not enqueue reports', err, { reports: batch.length });
    const reply: ReportReply = { ok: false, code: RefusalCode.Unavailable, reason: `could not enqueue: ${errorMessage(err)}`, retryable: true };
    for (const w of batch) this.reply(w.msg, reply);
  }

  /**
   * Refuses the reports whose (cluster, job, token) does not fit, checking the
   * triples not seen before in one pipeline, then those whose info does not
   * fit the node's entry (its own roles, one direct IP per MAC: DESIGN §8).
   */
  private async checkMembers(batch: Waiting[]): Promise<Waiting[]> {
    const members = await this.checkTriples(batch);
    const problems = await Promise.all(members.map((w) => this.info.problem(w.report.cluster, w.report.job, w.report.info)));
    return members.filter((w, i) => {
      const problem = problems[i];
      if (problem) this.reject(w.msg, RefusalCode.Invalid, problem, w.report);
      return !problem;
    });
  }

  private async checkTriples(batch: Waiting[]): Promise<Waiting[]> {
    const key = (r: Report): string => `${r.cluster}\n${r.job}\n${r.token}`;
    const unknown = new Map<string, Report>();
    for (const { report: r } of batch) {
      if (!this.members.has(r.cluster, r.job, r.token)) unknown.set(key(r), r);
    }
    if (unknown.size === 0) return batch;
    const triples = [...unknown.values()];
    const answers = await this.store.checkMemberships(triples);
    const refused = new Map<string, MembershipRefusal>();
    triples.forEach((t, i) => {
      const bad = answers[i];
      if (bad) refused.set(key(t), bad);
      else this.members.remember(t.cluster, t.job, t.token);
    });
    if (refused.size === 0) return batch;
    return batch.filter((w) => {
      const bad = refused.get(key(w.report));
      if (bad) this.reject(w.msg, bad.code, bad.reason, w.report);
      return !bad;
    });
  }

  async close(): Promise<void> {
    await this.sub?.drain().catch(() => undefined);
    // Reports handed over before the drain ended still get their add and their answer.
    while (this.flushing || this.kicked || this.waiting.length > 0) {
      if (this.flushing) await this.flushing;
      else await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.flushing && !this.kicked && this.waiting.length > 0) this.kick();
    }
    this.repeats.close();
  }
}
