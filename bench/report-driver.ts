import { randomBytes } from 'node:crypto';
import { createInbox } from 'nats';
import type { NatsConnection, Subscription } from 'nats';
import { decodeText } from '../src/bus/connect';
import { ReportSchema } from '../src/bus/messages';
import type { Report, ReportReply } from '../src/bus/messages';
import { WAITS_FOR } from '../src/core/states';
import type { Environment } from './environment';
import { STEPS, submitBenchClusters } from './clusters';
import type { Step } from './clusters';

/**
 * The throughput ramp's simulated nodes, made cheap so the ramp measures the
 * workers and not the bench (issue 13, item 5). What stays real: every report
 * is a ReportSchema report of a cluster submitted as `submit` does, with its
 * node's token and a fresh report id, sent as a NATS request to the cluster's
 * report subject; every reply is checked (`ok: true`, anything else is counted
 * and reported); every barrier answer is checked (the right barrier, resolved
 * as itself, not `abort`). What is cut, against a NodeClient per node:
 *
 * - reports are encoded before the level starts: one byte array per node and
 *   step, only the `at` digits written at send time;
 * - one reply inbox per node group (NATS connection): a report is a publish
 *   with reply subject `<inbox>.<n>`, one subscription per group answers them
 *   all, matched by `n` (nats.js `request` adds a timer, a deferred promise and
 *   a stack-trace Error per request);
 * - one barrier subscription (`<prefix>.cluster.*.barrier`) for all clusters,
 *   instead of one per node: each resolution is received and parsed once;
 * - no timer or promise per report: a report never answered is counted as
 *   unanswered when the level drains.
 */

/** Placeholder of `at` in an encoded report: 13 digits, rewritten with Date.now() at send time. */
const AT_PLACEHOLDER = 1_000_000_000_000;
const OK_PREFIX = Buffer.from('{"ok":true,');

export interface DriverCluster {
  id: string;
  /** Node connection (group) this cluster's nodes use. */
  group: number;
  nodes: number;
  subject: string;
  /** Encoded reports: [step][node]. */
  payloads: Uint8Array[][];
  /** Where the `at` digits sit in each payload: [step][node]. */
  atOffsets: number[][];
  step: number;
}

/** One barrier in flight: its cluster's reports sent, waiting for their replies and the answer. */
export interface Arrival {
  cluster: DriverCluster;
  step: Step;
  /** performance.now() when its reports were sent. */
  sentAt: number;
  acks: number;
  /** performance.now() when the barrier answer arrived. */
  answeredAt?: number;
}

function writeDigits(buf: Uint8Array, offset: number, value: number): void {
  for (let i = 12; i >= 0; i--) {
    buf[offset + i] = 48 + (value % 10);
    value = Math.floor(value / 10);
  }
}

function encodeReport(report: Report): { bytes: Uint8Array; at: number } {
  const text = JSON.stringify(report);
  const bytes = Buffer.from(text);
  const at = bytes.indexOf(`"at":${AT_PLACEHOLDER}`);
  if (at < 0) throw new Error('bench: no at field in an encoded report');
  return { bytes, at: at + 5 };
}

/** Submits `count` clusters and encodes every report of their life (STEPS), spread over the node groups round robin. */
export async function createDriverClusters(env: Environment, count: number, nodes: number): Promise<DriverCluster[]> {
  const submitted = await submitBenchClusters(env, count, nodes);
  let checked = false;
  return submitted.map((s, i) => {
    const payloads: Uint8Array[][] = [];
    const atOffsets: number[][] = [];
    for (const step of STEPS) {
      const row = s.jobs.map((j) => {
        const report: Report = { v: 1, id: `${j.job_id}.${step}.${randomBytes(6).toString('hex')}`, cluster: j.cluster, job: j.job_id, state: step, at: AT_PLACEHOLDER, token: j.token };
        if (!checked) {
          ReportSchema.parse(report);
          checked = true;
        }
        return encodeReport(report);
      });
      payloads.push(row.map((r) => r.bytes));
      atOffsets.push(row.map((r) => r.at));
    }
    return { id: s.cluster, group: i % env.nodeNats.length, nodes: s.jobs.length, subject: env.subjects.report(s.cluster), payloads, atOffsets, step: 0 };
  });
}

/**
 * Sends the reports of barrier arrivals and follows them to their answers.
 * `onDone` is called once per arrival whose every reply was `ok` and whose
 * answer came; refusals and wrong answers are counted in `failures`.
 */
export class ReportDriver {
  private readonly groups: { nc: NatsConnection; inbox: string; sub: Subscription }[] = [];
  private readonly waiting = new Map<number, Arrival>();
  private readonly byCluster = new Map<string, Arrival>();
  private barrierSub: Subscription | undefined;
  private seq = 0;
  /** Arrivals sent and not yet done. */
  readonly open = new Set<Arrival>();
  /** Refused reports and wrong answers, with the first few reasons. */
  failures = 0;
  readonly reasons: string[] = [];

  constructor(
    private readonly env: Environment,
    private readonly onDone: (a: Arrival) => void,
  ) {}

  async start(): Promise<void> {
    for (const nc of this.env.nodeNats) {
      const inbox = createInbox();
      const sub = nc.subscribe(`${inbox}.*`, { callback: (err, msg) => (err ? this.fail(`reply subscription: ${err.message}`) : this.reply(msg.subject, msg.data, inbox.length + 1)) });
      this.groups.push({ nc, inbox, sub });
    }
    const prefix = `${this.env.subjects.prefix}.cluster.`;
    this.barrierSub = this.env.nc.subscribe(`${prefix}*.barrier`, {
      callback: (err, msg) => (err ? this.fail(`barrier subscription: ${err.message}`) : this.answer(msg.subject.slice(prefix.length, -'.barrier'.length), msg.data)),
    });
    await Promise.all([this.env.nc.flush(), ...this.groups.map((g) => g.nc.flush())]);
  }

  /** Sends every node's report of the cluster's current step. */
  send(c: DriverCluster): Arrival {
    const step = STEPS[c.step] as Step;
    const a: Arrival = { cluster: c, step, sentAt: performance.now(), acks: 0 };
    this.open.add(a);
    this.byCluster.set(c.id, a);
    const g = this.groups[c.group] as (typeof this.groups)[number];
    const payloads = c.payloads[c.step] as Uint8Array[];
    const offsets = c.atOffsets[c.step] as number[];
    const now = Date.now();
    for (let i = 0; i < payloads.length; i++) {
      const p = payloads[i] as Uint8Array;
      writeDigits(p, offsets[i] as number, now);
      const n = ++this.seq;
      this.waiting.set(n, a);
      g.nc.publish(c.subject, p, { reply: `${g.inbox}.${n}` });
    }
    return a;
  }

  private reply(subject: string, data: Uint8Array, from: number): void {
    const n = Number(subject.slice(from));
    const a = this.waiting.get(n);
    if (!a) return;
    this.waiting.delete(n);
    if (!Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, OK_PREFIX.length)).equals(OK_PREFIX)) {
      let reason: string;
      try {
        const r = JSON.parse(decodeText(data)) as ReportReply;
        reason = r.ok ? 'unexpected reply layout' : `${r.code}: ${r.reason}`;
        if (r.ok) return this.acked(a);
      } catch {
        reason = `unreadable reply ${JSON.stringify(decodeText(data).slice(0, 80))}`;
      }
      return this.fail(`report of ${a.cluster.id} ${a.step} refused: ${reason}`, a);
    }
    this.acked(a);
  }

  private acked(a: Arrival): void {
    a.acks++;
    this.maybeDone(a);
  }

  private answer(cluster: string, data: Uint8Array): void {
    const a = this.byCluster.get(cluster);
    if (!a || a.answeredAt !== undefined) return;
    const at = performance.now();
    let m: { cluster?: string; barrier?: string; result?: string; reason?: string };
    try {
      m = JSON.parse(decodeText(data)) as typeof m;
    } catch {
      return this.fail(`unreadable barrier answer for ${cluster}`, a);
    }
    // An answer to an earlier barrier of the cluster (a repeat) is not this one's.
    if (m.cluster !== cluster || m.barrier !== WAITS_FOR[a.step]) {
      if (m.result === 'abort') this.fail(`cluster ${cluster} aborted at ${m.barrier ?? '?'}: ${m.reason ?? ''}`, a);
      return;
    }
    if (m.result !== m.barrier) return this.fail(`cluster ${cluster} answered ${m.result ?? '?'} at ${m.barrier}: ${m.reason ?? ''}`, a);
    a.answeredAt = at;
    this.maybeDone(a);
  }

  private maybeDone(a: Arrival): void {
    if (a.answeredAt === undefined || a.acks < a.cluster.nodes || !this.open.has(a)) return;
    this.open.delete(a);
    if (this.byCluster.get(a.cluster.id) === a) this.byCluster.delete(a.cluster.id);
    this.onDone(a);
  }

  private fail(reason: string, a?: Arrival): void {
    this.failures++;
    if (this.reasons.length < 5) this.reasons.push(reason);
    if (a) {
      this.open.delete(a);
      if (this.byCluster.get(a.cluster.id) === a) this.byCluster.delete(a.cluster.id);
    }
  }

  /** Resolves once nothing is open, or after `ms`. */
  async drain(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (this.open.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  async close(): Promise<void> {
    for (const g of this.groups) g.sub.unsubscribe();
    this.barrierSub?.unsubscribe();
    this.groups.length = 0;
    this.waiting.clear();
    this.byCluster.clear();
  }
}
