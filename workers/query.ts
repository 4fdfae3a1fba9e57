import type { NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import { respondBounded } from '../src/bus/bounded';
import { decodeText } from '../src/bus/connect';
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
          const { answer, what } = await this.answer(msg.data, msg.subject).catch((e: unknown) => ({ answer: { ok: false, reason: errorMessage(e) }, what: 'the answer' }));
          // roles_ip of a cluster with many roles can outgrow max_payload: the node hears why, the worker lives.
          respondBounded(this.nc, msg, answer, this.log, what);
        })();
      },
    });
  }

  private async answer(data: Uint8Array, subject: string): Promise<{ answer: unknown; what: string }> {
    let body: unknown;
    try {
      body = JSON.parse(decodeText(data));
    } catch {
      return { answer: { ok: false, reason: 'query is not JSON' }, what: 'the answer' };
    }
    const parsed = QuerySchema.safeParse(body);
    const refuse = (reason: string) => ({ answer: { ok: false, reason }, what: 'the answer' });
    if (!parsed.success) return refuse(describeZodError(parsed.error));
    const q = parsed.data;
    if (this.subjects.clusterOf(subject) !== q.cluster) return refuse("query sent on another cluster's subject");
    const bad = await this.store.checkMembership(q.cluster, q.job, q.token);
    if (bad) {
      this.log.warn({ ...bad, job: q.job }, 'query rejected');
      return refuse(bad.reason);
    }
    const view = await this.store.readCluster(q.cluster);
    return q.what === 'roles_ip'
      ? { answer: { ok: true, roles_ip: rolesIpLines(view.nodes) }, what: 'the roles_ip answer' }
      : { answer: { ok: true, cluster: view }, what: 'the cluster state answer' };
  }

  async close(): Promise<void> {
    await this.sub?.drain().catch(() => undefined);
  }
}
