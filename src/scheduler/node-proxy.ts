import type { NatsConnection } from 'nats';
import type { ReportInfo } from '../bus/messages';
import type { SharedSubscriptions, Router } from '../bus/shared-subscriptions';
import type { Subjects } from '../bus/subjects';
import { NodeClient } from '../client/node-client';
import type { NodeIdentity } from '../client/node-client';
import { WAITS_FOR } from '../core/states';
import type { Barrier, ReportKind, Result } from '../core/states';
import { ReportGroups, holdWait } from './held-waits';
import type { GoneSignal, Held } from './held-waits';
import type { ClusterIdentity, IdentityHolder } from './legacy-reads';

/**
 * The legacy endpoint speaks for an lkp node that cannot talk NATS: it
 * reports like a node (with the cluster's token, through the workers) and
 * waits on the subjects the workers publish, never by reading Redis in a loop.
 *
 * Every subject is subscribed once per process however many requests wait
 * on it (`SharedSubscriptions`), before any of them reports, so none can
 * miss its answer; waits are held in memory (held-waits.ts) and leave on
 * every way out: the answer, the time limit, or the HTTP client going away
 * (`signal`).
 */
export interface ProxyContext {
  nc: NatsConnection;
  subjects: Subjects;
  shared: SharedSubscriptions;
}

export type WaitKind = 'wait_start' | 'wait_ready' | 'wait_finish' | 'finished';

/** What one wait ended with: the barrier's result, `retry` at the time limit, or `gone` when the client left. */
export type WaitOutcome = Held<Result>;

/** How long a report of a wait held without limit keeps trying to reach the workers, ms. */
const UNLIMITED_WAIT_REPORT_GIVE_UP_MS = 600_000;

/** A node client that only sends reports (it subscribes to nothing). */
export function reporterFor(ctx: ProxyContext, id: NodeIdentity, giveUpAfterMs: number): NodeClient {
  return new NodeClient(ctx.nc, ctx.subjects, id, { giveUpAfterMs });
}

/**
 * One cluster's barrier subject: every answer heard while subscribed (a
 * barrier's result is final), the groups of waits by barrier, and whoever
 * wants to hear of an abort (message waits).
 */
export class BarrierRouter implements Router, IdentityHolder {
  readonly answers = new Map<Barrier, Result>();
  abortReason: string | undefined;
  /** The cluster's token and nodes, kept while subscribed (legacy-reads.ts). */
  identity: ClusterIdentity | undefined;
  readonly groups = new ReportGroups<undefined, Result>();
  private readonly abortListeners = new Set<(reason: string) => void>();

  constructor(readonly cluster: string) {}

  deliver(body: unknown): void {
    const m = body as { cluster?: unknown; barrier?: unknown; result?: unknown; reason?: unknown };
    if (m.cluster !== this.cluster || typeof m.barrier !== 'string' || typeof m.result !== 'string') return;
    if (m.result === 'abort') {
      if (this.abortReason !== undefined) return;
      this.abortReason = typeof m.reason === 'string' && m.reason !== '' ? m.reason : 'cluster aborted';
      for (const g of this.groups.all()) g.settle('abort');
      for (const l of [...this.abortListeners]) l(this.abortReason);
      return;
    }
    const barrier = m.barrier as Barrier;
    if (this.answers.has(barrier)) return;
    this.answers.set(barrier, m.result as Result);
    for (const g of this.groups.in(barrier)) g.settle(m.result as Result);
  }

  reconnected(): void {
    for (const g of this.groups.all()) g.resend();
  }

  get waiting(): number {
    return this.groups.waiting;
  }

  /** Heard the cluster end: its finish barrier resolved, or it aborted. */
  get ended(): boolean {
    return this.abortReason !== undefined || this.answers.has('finish');
  }

  /** Calls `fn` once when the cluster aborts (now, if it has). Returns how to forget `fn`. */
  onAbort(fn: (reason: string) => void): () => void {
    if (this.abortReason !== undefined) {
      fn(this.abortReason);
      return () => undefined;
    }
    this.abortListeners.add(fn);
    return () => this.abortListeners.delete(fn);
  }
}

/** The cluster's barrier router while some wait holds its subscription (no share is taken). */
export function barrierRouter(ctx: Pick<ProxyContext, 'subjects' | 'shared'>, cluster: string): BarrierRouter | undefined {
  return ctx.shared.peek<BarrierRouter>(ctx.subjects.barrier(cluster));
}

/** A share of the cluster's barrier subject. */
export function barrierLease(ctx: ProxyContext, cluster: string) {
  return ctx.shared.acquire(ctx.subjects.barrier(cluster), () => new BarrierRouter(cluster));
}

/**
 * Reports `kind` for the node and waits for its barrier's resolution, or
 * `limitMs` (then `retry`; `undefined`: no limit, the barrier's own deadline
 * ends the wait with `abort`). A barrier resolved before is answered at once:
 * from what this process heard while subscribed, or from the workers, which
 * publish the stored answer again for a repeated wait report. The node's
 * requests waiting at one barrier share one report.
 */
export async function waitAtBarrier(ctx: ProxyContext, id: NodeIdentity, kind: WaitKind, limitMs: number | undefined, signal: GoneSignal): Promise<WaitOutcome> {
  const barrier = WAITS_FOR[kind] as Barrier;
  const lease = await barrierLease(ctx, id.cluster);
  try {
    const router = lease.router;
    return await holdWait<Result>(limitMs, signal, (finish) => {
      const known = router.abortReason !== undefined ? 'abort' : router.answers.get(barrier);
      if (known) {
        finish(known);
        return () => undefined;
      }
      const group = router.groups.group(barrier, `${id.job} ${kind}`, () => {
        const reporter = reporterFor(ctx, id, limitMs ?? UNLIMITED_WAIT_REPORT_GIVE_UP_MS);
        const reportId = reporter.newReportId(kind);
        return { meta: undefined, send: () => reporter.report(kind, { id: reportId }) };
      });
      const leave = group.join(finish);
      group.ensureSent();
      return leave;
    });
  } finally {
    lease.release();
  }
}

/** One cluster's event subject: waits for a node's report to be folded, by job and report kind. */
class EventRouter implements Router {
  readonly groups = new ReportGroups<undefined, true>();

  deliver(body: unknown): void {
    const ev = body as { type?: unknown; job?: unknown; report?: unknown };
    if (ev.type !== 'report' || typeof ev.job !== 'string' || typeof ev.report !== 'string') return;
    for (const g of this.groups.in(`${ev.job} ${ev.report}`)) g.settle(true);
  }

  reconnected(): void {
    for (const g of this.groups.all()) g.resend();
  }

  get waiting(): number {
    return this.groups.waiting;
  }
}

let seeFoldSeq = 0;

/**
 * Reports `kind` (with `info`) and waits until the workers folded it: the
 * cluster's event for this node's report. Returns false when the fold was
 * not seen within `limitMs` (the report is durable either way).
 */
export async function reportAndSeeFold(ctx: ProxyContext, id: NodeIdentity, kind: ReportKind, info: ReportInfo | undefined, limitMs: number, signal: GoneSignal): Promise<boolean> {
  const lease = await ctx.shared.acquire(ctx.subjects.event(id.cluster), () => new EventRouter());
  try {
    const seen = await holdWait<true>(limitMs, signal, (finish) => {
      // Each call its own group (two write_states may carry different info); the event settles every group of the node and kind.
      const group = lease.router.groups.group(`${id.job} ${kind}`, `${++seeFoldSeq}`, () => {
        const reporter = reporterFor(ctx, id, limitMs);
        const reportId = reporter.newReportId(kind);
        return { meta: undefined, send: () => reporter.report(kind, { id: reportId, info }) };
      });
      const leave = group.join(finish);
      group.ensureSent();
      return leave;
    });
    return seen === true;
  } finally {
    lease.release();
  }
}
