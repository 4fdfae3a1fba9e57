import type { Msg, NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import { decodeText, encodeJson } from '../src/bus/connect';
import { MAX_REPORT_BYTES, ReportSchema, describeZodError } from '../src/bus/messages';
import type { Report, ReportReply } from '../src/bus/messages';
import { WORKER_QUEUE_GROUP } from '../src/bus/subjects';
import type { Subjects } from '../src/bus/subjects';
import { MembershipCache } from '../src/cluster/membership-cache';
import { NodeInfoChecker } from '../src/cluster/node-info';
import type { ClusterStore } from '../src/cluster/store';
import { errorMessage } from '../src/core/errors';
import type { QueueSet } from '../src/queue/queues';
import type { WorkerEvents } from './events';

/** BullMQ options of a report job. The report id is the job id, so a report sent twice is folded once. */
export function reportJobOptions(id: string) {
  return {
    jobId: id,
    removeOnComplete: true,
    removeOnFail: 5000,
    attempts: 5,
    backoff: { type: 'exponential', delay: 200 },
  } as const;
}

/**
 * NATS -> BullMQ. Each report request is checked (size, JSON, schema, subject,
 * token and membership) and added to the reports queue; the reply goes out
 * only once the add succeeded, so an accepted report is durable in Redis.
 * Workers share a queue group: each report reaches one bridge.
 */
export class ReportBridge {
  private sub: Subscription | undefined;
  private readonly members = new MembershipCache();
  private readonly info = new NodeInfoChecker(async (cid, job) => (await this.store.readCluster(cid)).nodes.find((n) => n.job === job));
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly store: ClusterStore,
    private readonly queues: QueueSet,
    private readonly events: WorkerEvents,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(this.subjects.allReports, {
      queue: WORKER_QUEUE_GROUP,
      callback: (err, msg) => {
        if (err) {
          this.log.error({ err }, 'report subscription failed');
          return;
        }
        const p = this.handle(msg).finally(() => this.inflight.delete(p));
        this.inflight.add(p);
      },
    });
  }

  private reply(msg: Msg, reply: ReportReply): void {
    if (msg.reply) msg.respond(encodeJson(reply));
  }

  private reject(msg: Msg, code: string, reason: string, report?: Partial<Report>): void {
    this.log.warn({ code, reason, subject: msg.subject, job: report?.job, report: report?.id }, 'report rejected');
    this.events.emit('rejected', code, reason);
    this.reply(msg, { ok: false, code, reason });
  }

  async handle(msg: Msg): Promise<void> {
    if (msg.data.length > MAX_REPORT_BYTES) {
      this.reject(msg, 'TOO_LARGE', `report is ${msg.data.length} bytes; the limit is ${MAX_REPORT_BYTES}`);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(decodeText(msg.data));
    } catch {
      this.reject(msg, 'INVALID', 'report is not JSON');
      return;
    }
    const parsed = ReportSchema.safeParse(body);
    if (!parsed.success) {
      this.reject(msg, 'INVALID', describeZodError(parsed.error));
      return;
    }
    const report = parsed.data;
    const subjectCluster = this.subjects.clusterOf(msg.subject);
    if (subjectCluster !== report.cluster) {
      this.reject(msg, 'OTHER_CLUSTER', `report for cluster ${report.cluster} sent on the subject of cluster ${subjectCluster ?? '?'}`, report);
      return;
    }
    try {
      if (!this.members.has(report.cluster, report.job, report.token)) {
        const bad = await this.store.checkMembership(report.cluster, report.job, report.token);
        if (bad) {
          this.reject(msg, bad.code, bad.reason, report);
          return;
        }
        this.members.remember(report.cluster, report.job, report.token);
      }
      // What a node says about itself must fit its entry: its own roles, one direct IP per MAC (DESIGN §8).
      const problem = await this.info.problem(report.cluster, report.job, report.info);
      if (problem) {
        this.reject(msg, 'INVALID', problem, report);
        return;
      }
      await this.queues.reports.add(report.state, report, reportJobOptions(report.id));
      this.reply(msg, { ok: true, id: report.id });
    } catch (err) {
      this.log.error({ err, report: report.id }, 'could not enqueue report');
      this.reply(msg, { ok: false, code: 'UNAVAILABLE', reason: `could not enqueue: ${errorMessage(err)}`, retryable: true });
    }
  }

  async close(): Promise<void> {
    await this.sub?.drain().catch(() => undefined);
    await Promise.allSettled([...this.inflight]);
  }
}
