import type { NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import { decodeText, encodeJson } from '../src/bus/connect';
import { QuerySchema, describeZodError } from '../src/bus/messages';
import { WORKER_QUEUE_GROUP } from '../src/bus/subjects';
import type { Subjects } from '../src/bus/subjects';
import type { ClusterStore } from '../src/cluster/store';
import { rolesIpLines } from '../src/cluster/view';
import { errorMessage } from '../src/core/errors';

/** Answers nodes' reads of their cluster (roles_ip, state) over NATS, token checked. */
export class QueryResponder {
  private sub: Subscription | undefined;
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly store: ClusterStore,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(this.subjects.allQueries, {
      queue: WORKER_QUEUE_GROUP,
      callback: (err, msg) => {
        if (err) return;
        void (async () => {
          const answer = await this.answer(msg.data, msg.subject).catch((e: unknown) => ({ ok: false, reason: errorMessage(e) }));
          if (msg.reply) msg.respond(encodeJson(answer));
        })();
      },
    });
  }

  private async answer(data: Uint8Array, subject: string): Promise<unknown> {
    let body: unknown;
    try {
      body = JSON.parse(decodeText(data));
    } catch {
      return { ok: false, reason: 'query is not JSON' };
    }
    const parsed = QuerySchema.safeParse(body);
    if (!parsed.success) return { ok: false, reason: describeZodError(parsed.error) };
    const q = parsed.data;
    if (this.subjects.clusterOf(subject) !== q.cluster) return { ok: false, reason: 'query sent on another cluster\'s subject' };
    const bad = await this.store.checkMembership(q.cluster, q.job, q.token);
    if (bad) {
      this.log.warn({ ...bad, job: q.job }, 'query rejected');
      return { ok: false, reason: bad.reason };
    }
    const view = await this.store.readCluster(q.cluster);
    return q.what === 'roles_ip' ? { ok: true, roles_ip: rolesIpLines(view.nodes) } : { ok: true, cluster: view };
  }

  async close(): Promise<void> {
    await this.sub?.drain().catch(() => undefined);
  }
}
