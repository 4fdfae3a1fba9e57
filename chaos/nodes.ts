import type { NatsConnection } from 'nats';
import { decodeText, encodeJson } from '../src/bus/connect';
import type { DoneReply, DoneRequest, TakeReply } from '../src/bus/queue-messages';
import { Outcome, abortOutcome } from '../src/agent/outcome';
import type { LifeResult } from '../src/agent/outcome';
import type { Report, ReportInfo } from '../src/bus/messages';
import type { Subjects } from '../src/bus/subjects';
import type { NodeJob } from '../src/split/node-job';
import { NodeClient } from '../src/client/node-client';
import type { NodeIdentity } from '../src/client/node-client';
import { errorMessage } from '../src/core/errors';
import { BARRIERS, WAIT_REPORT } from '../src/core/states';
import type { ReportKind } from '../src/core/states';
import { sleep } from './env';
import type { History } from './history';
import type { NodePlan } from './plan';

/**
 * The nodes of a chaos round. A NodeClient node takes its node job from the
 * dispatcher (`take`), as the node agent does, runs DESIGN §3's life through
 * the real client library, with every report, acknowledgement and answer
 * written to the history, and tells the dispatcher how it ended (`done`);
 * a legacy node does the life over the legacy HTTP endpoint, as lkp-tests'
 * shell functions do.
 */

/** A NodeClient that writes what it sends and hears to the history, and can be paused like a stopped machine. */
export class RecordingClient extends NodeClient {
  private lastId = '';
  pausedUntil = 0;
  /** Reports sent, in order: for re-sending one with the same id. */
  readonly sent: Report[] = [];

  constructor(
    nc: NatsConnection,
    subjects: Subjects,
    id: NodeIdentity,
    private readonly history: History,
  ) {
    super(nc, subjects, id, { requestTimeoutMs: 1000, maxBackoffMs: 500, giveUpAfterMs: 120_000 });
  }

  override newReportId(kind: ReportKind): string {
    this.lastId = super.newReportId(kind);
    return this.lastId;
  }

  override async report(kind: ReportKind, extra: { info?: ReportInfo; reason?: string } = {}): Promise<void> {
    if (kind !== 'heartbeat' && Date.now() < this.pausedUntil) this.history.add({ kind: 'held', cluster: this.id.cluster, job: this.id.job, what: kind });
    while (Date.now() < this.pausedUntil) await sleep(Math.min(100, this.pausedUntil - Date.now()));
    const p = super.report(kind, extra); // takes its id synchronously
    const id = this.lastId;
    if (kind === 'heartbeat') return p;
    this.sent.push({ v: 1, id, cluster: this.id.cluster, job: this.id.job, state: kind, at: Date.now(), token: this.id.token, ...(extra.info ? { info: extra.info } : {}) });
    const h = this.history;
    h.add({ kind: 'send', cluster: this.id.cluster, job: this.id.job, what: kind, id });
    try {
      await p;
      h.add({ kind: 'ack', cluster: this.id.cluster, job: this.id.job, what: kind, id });
    } catch (err) {
      h.add({ kind: 'error', cluster: this.id.cluster, job: this.id.job, what: kind, id, detail: errorMessage(err) });
      throw err;
    }
  }

  /** Sends an earlier report again, byte for byte the same id: what a retry or a late copy looks like. */
  async resend(report: Report, why: string): Promise<void> {
    const h = this.history;
    h.add({ kind: 'dup', cluster: report.cluster, job: report.job, what: report.state, id: report.id, detail: why });
    try {
      const msg = await this.nc.request(this.subjects.report(report.cluster), encodeJson({ ...report, at: Date.now() }), { timeout: 2000 });
      const reply = JSON.parse(new TextDecoder().decode(msg.data)) as { ok: boolean; reason?: string };
      h.add({ kind: reply.ok ? 'ack' : 'reject', cluster: report.cluster, job: report.job, what: report.state, id: report.id, detail: `${why}${reply.reason ? `: ${reply.reason}` : ''}` });
    } catch (err) {
      h.add({ kind: 'error', cluster: report.cluster, job: report.job, what: report.state, id: report.id, detail: `${why}: ${errorMessage(err)}` });
    }
  }
}

export interface NodeContext {
  history: History;
  heartbeatMs: number;
  /** Resolves when the cluster has ended (its final barrier answered or aborted), or after the round's limit. */
  ended: () => Promise<void>;
}

function info(plan: NodePlan, i: number): ReportInfo {
  return { ip: `10.77.${(i >> 8) & 255}.${i & 255}`, node_roles: plan.roles };
}

/** A NodeClient node's life: how it ended, or undefined when it died (a dead node says nothing). Never throws: what went wrong is in the history. */
export async function clientLife(client: RecordingClient, plan: NodePlan, index: number, ctx: NodeContext): Promise<LifeResult | undefined> {
  const h = ctx.history;
  const who = { cluster: client.id.cluster, job: client.id.job };
  await sleep(plan.startMs);
  let stopBeats = client.startHeartbeat(ctx.heartbeatMs);
  let result: LifeResult = { outcome: Outcome.Passed, reason: '' };
  const aborted = (reason: string | undefined): LifeResult => {
    const r = reason ?? client.aborted?.reason ?? 'cluster aborted';
    return { outcome: abortOutcome(r), reason: r };
  };
  try {
    await client.report('write_state', { info: info(plan, index) });
    for (const b of BARRIERS) {
      if (plan.behaviour !== 'pass' && plan.at === b) {
        if (plan.behaviour === 'fail') {
          await client.report('failed', { reason: 'chaos: the test failed' });
          result = { outcome: Outcome.TestFailed, reason: 'chaos: the test failed' };
        } else if (plan.behaviour === 'hang') {
          h.add({ kind: 'hang', ...who, barrier: b });
        } else {
          stopBeats();
          stopBeats = () => undefined;
          h.add({ kind: 'die', ...who, barrier: b });
          return undefined;
        }
        await ctx.ended();
        // A hung test is stopped by the cluster's abort, as the agent stops it.
        if (plan.behaviour === 'hang') result = aborted(undefined);
        break;
      }
      const kind = b === 'finish' ? 'finished' : (WAIT_REPORT[b] as 'wait_start' | 'wait_ready');
      const waiting = client.wait(kind);
      // Awaited below; a rejection meanwhile (its machine died: connection closed) must not go unhandled.
      waiting.catch(() => undefined);
      if (plan.duplicate) {
        await sleep(5);
        const last = client.sent[client.sent.length - 1];
        if (last?.state === kind) await client.resend(last, 'duplicate');
      }
      const answer = await waiting;
      h.add({ kind: 'answer', ...who, what: kind, barrier: answer.barrier, result: answer.result });
      if (plan.reorder && client.sent.length >= 2) await client.resend(client.sent[client.sent.length - 2] as Report, 'reordered: an older report again');
      if (answer.result === 'abort') {
        result = aborted(answer.reason);
        break;
      }
    }
    stopBeats();
    if (plan.late) {
      await ctx.ended();
      h.add({ kind: 'late', ...who, what: 'wait_ready' });
      await client.report('wait_ready').catch(() => undefined);
    }
  } catch (err) {
    h.add({ kind: 'error', ...who, detail: errorMessage(err) });
    result = { outcome: Outcome.SetupError, reason: errorMessage(err) };
  } finally {
    stopBeats();
  }
  return result;
}

/** The start of the history line of a node that asked for its node job until its cluster ended and never got it. */
export const NEVER_GOT = 'never got its node job from the dispatcher';

/** What a NodeClient node needs besides its plan: NATS, and where to put the client (for pauses). */
export interface TakerContext extends NodeContext {
  nc: NatsConnection;
  subjects: Subjects;
  onClient: (c: RecordingClient) => void;
  /** Epoch ms after which the node stops asking for its job. */
  deadline: number;
}

/**
 * A NodeClient node as the agent runs one: takes its node job from the
 * dispatcher (asking again while nobody answers or the queue has nothing:
 * the job may be on its way), runs the life with the identity in the job it
 * got, and says `done` with how the life ended. A node that died says
 * nothing; one that never got its job runs nothing.
 */
export async function takerLife(submitted: NodeJob, plan: NodePlan, index: number, ctx: TakerContext): Promise<void> {
  const h = ctx.history;
  const who = { cluster: submitted.cluster, job: submitted.job_id };
  const testbox = submitted.queue;
  let job: NodeJob | undefined;
  let lock = '';
  let said = '';
  let stop = false;
  void ctx.ended().then(() => (stop = true));
  while (!job && !stop && Date.now() < ctx.deadline) {
    let problem: string;
    try {
      const msg = await ctx.nc.request(ctx.subjects.take(testbox), encodeJson({ v: 1, agent: `chaos:${submitted.job_id}` }), { timeout: 1000 });
      const reply = JSON.parse(decodeText(msg.data)) as TakeReply;
      if (reply.ok && reply.job) {
        job = reply.job;
        lock = reply.lock;
        break;
      }
      problem = reply.ok ? 'no job' : `refused: ${reply.reason}`;
    } catch (err) {
      problem = errorMessage(err);
    }
    if (problem !== said) h.add({ kind: 'note', ...who, detail: `take: ${problem}; asking again` });
    said = problem;
    await sleep(200);
  }
  if (!job) {
    h.add({ kind: 'error', ...who, detail: `${NEVER_GOT} (last: ${said || 'the cluster ended first'})` });
    return;
  }
  h.add({ kind: 'take', ...who, detail: `${testbox}${job.job_id === submitted.job_id ? '' : `: got ${job.job_id}!`}` });
  if (job.job_id !== submitted.job_id) return;
  const client = new RecordingClient(ctx.nc, ctx.subjects, { cluster: job.cluster, job: job.job_id, token: job.token }, h);
  await client.start();
  ctx.onClient(client);
  let result: LifeResult | undefined;
  try {
    result = await clientLife(client, plan, index, ctx);
  } finally {
    await client.close();
  }
  if (result)
    await sayDone(ctx, testbox, { v: 1, job: job.job_id, lock, ok: result.outcome === Outcome.Passed, outcome: result.outcome, reason: result.reason ? result.reason.slice(0, 1000) : undefined }, who);
}

/**
 * The agent's `done`: asked again while nobody answers (a NATS restart) or the refusal is retryable
 * (Redis refused the write, as in a failover), as src/agent/agent.ts does; the last answer is in the history.
 */
async function sayDone(ctx: TakerContext, testbox: string, done: DoneRequest, who: { cluster: string; job: string }): Promise<void> {
  const line = { kind: 'done' as const, ...who, what: done.outcome, ...(done.reason ? { detail: done.reason } : {}) };
  let last = '';
  for (let attempt = 1; attempt <= 10; attempt++) {
    try {
      const msg = await ctx.nc.request(ctx.subjects.done(testbox), encodeJson(done), { timeout: 1000 });
      const reply = JSON.parse(decodeText(msg.data)) as DoneReply;
      if (!reply.ok && reply.retryable && attempt < 10) {
        ctx.history.add({ kind: 'note', ...who, detail: `done: refused, retryable: ${reply.reason}; asking again` });
        last = reply.reason;
        await sleep(Math.min(2000, 100 * 2 ** attempt));
        continue;
      }
      ctx.history.add({ ...line, result: reply.ok ? 'ok' : `refused: ${reply.reason}` });
      return;
    } catch (err) {
      last = errorMessage(err);
      await sleep(Math.min(2000, 100 * 2 ** attempt));
    }
  }
  ctx.history.add({ ...line, result: `error: ${last}` });
}

/** A legacy node: lkp-tests' shell client over `GET /~lkp/cgi-bin/lkp-cluster-sync`. */
export async function legacyLife(baseUrl: () => string, job: string, cluster: string, plan: NodePlan, index: number, ctx: NodeContext): Promise<void> {
  const h = ctx.history;
  const who = { cluster, job, legacy: true };
  const get = async (state: string, extra: Record<string, string> = {}): Promise<string> => {
    const q = new URLSearchParams({ job_id: job, state, ...extra });
    h.add({ kind: 'send', ...who, what: state });
    // lkp's wait_cluster_state asks again on `retry`, up to 100 times; a refused connection (scheduler restarting) is retried too.
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        const res = await fetch(`${baseUrl()}/~lkp/cgi-bin/lkp-cluster-sync?${q.toString()}`, { signal: AbortSignal.timeout(30_000) });
        const body = await res.text();
        if (res.status === 200 && body !== 'retry') return body;
        if (res.status !== 200 && res.status < 500) {
          h.add({ kind: 'reject', ...who, what: state, detail: `HTTP ${res.status}: ${body.slice(0, 200)}` });
          return '';
        }
      } catch {
        /* the scheduler is being restarted: ask again */
      }
      await sleep(200);
    }
    h.add({ kind: 'error', ...who, what: state, detail: 'no answer after 100 tries' });
    return '';
  };
  await sleep(plan.startMs);
  try {
    const i = info(plan, index);
    await get('write_state', { node_roles: i.node_roles as string, ip: i.ip as string });
    h.add({ kind: 'ack', ...who, what: 'write_state' });
    for (const b of BARRIERS) {
      if (plan.behaviour !== 'pass' && plan.at === b) {
        if (plan.behaviour === 'fail') {
          await get('failed');
          h.add({ kind: 'ack', ...who, what: 'failed' });
        } else {
          h.add({ kind: 'hang', ...who, barrier: b });
        }
        return;
      }
      const kind = b === 'finish' ? 'finished' : WAIT_REPORT[b];
      const result = await get(kind);
      if (result === '') return;
      h.add({ kind: 'answer', ...who, what: kind, barrier: b, result });
      if (result === 'abort') return;
    }
  } catch (err) {
    h.add({ kind: 'error', ...who, detail: errorMessage(err) });
  }
}
