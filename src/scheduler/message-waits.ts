import type { MsgData, WaitMode } from '../bus/messages';
import type { Router } from '../bus/shared-subscriptions';
import { missingSenders } from '../client/message-client';
import type { Group } from '../client/message-client';
import type { NodeIdentity } from '../client/node-client';
import { ClusterAbortedError, RejectedError } from '../core/errors';
import { normalizeMessage } from '../fold/outcome';
import type { MessageState } from '../fold/outcome';
import { ReportGroups, holdWait } from './held-waits';
import type { GoneSignal, Held, ReportGroup } from './held-waits';
import { barrierLease, reporterFor } from './node-proxy';
import type { ProxyContext } from './node-proxy';

/*
 * Named messages (LAVA MultiNode) for the legacy endpoint, on one shared
 * subscription per cluster's `.msg` subject. The router keeps, per message
 * ID, the newest state heard (highest `seq`) and the groups of requests
 * waiting on it (held-waits.ts): the requests of one node waiting on one ID
 * the same way (mode, role) share one `wait_msg` report; a send or sync is
 * a group of its own. A delivery is looked at once per group of its ID,
 * never once per held request.
 */

interface MessageGroup {
  msg: string;
  /** Undefined for a plain send: answered by its own fold. */
  mode: WaitMode | undefined;
  role: string | undefined;
  nodes: Group;
  reportId: string;
  /** The group's own report was folded (waits count as folded at once: a satisfied ID answers). */
  folded: boolean;
}

type MsgGroup = ReportGroup<MessageGroup, MessageState>;

export class MessageRouter implements Router {
  private readonly states = new Map<string, MessageState>();
  private readonly byReport = new Map<string, MsgGroup>();
  readonly groups = new ReportGroups<MessageGroup, MessageState>((g) => this.byReport.delete(g.meta.reportId));

  constructor(readonly cluster: string) {}

  deliver(body: unknown): void {
    let state: MessageState;
    try {
      state = normalizeMessage(body as MessageState);
    } catch {
      return;
    }
    if (state.cluster !== this.cluster || typeof state.msg !== 'string' || typeof state.seq !== 'number') return;
    const known = this.states.get(state.msg);
    if (!state.error && (!known || state.seq >= known.seq)) this.states.set(state.msg, state);
    const own = state.by ? this.byReport.get(state.by.report) : undefined;
    if (own) {
      if (state.error) return own.settle(new RejectedError(state.error));
      own.meta.folded = true;
      // A plain send is answered by its own fold; the waits on the ID are looked at below all the same.
      if (own.meta.mode === undefined && !state.abort) own.settle(this.states.get(state.msg) ?? state);
    }
    if (state.abort) {
      const aborted = new ClusterAbortedError(state.abort);
      for (const g of this.groups.in(state.msg)) g.settle(aborted);
      return;
    }
    for (const g of this.groups.in(state.msg)) this.check(g);
  }

  /** Answers the group when the newest state of its ID satisfies it. */
  check(g: MsgGroup): void {
    const { meta } = g;
    if (!meta.folded || meta.mode === undefined) return;
    const st = this.states.get(meta.msg);
    if (st && missingSenders(st, meta.nodes, meta.mode, meta.role).length === 0) g.settle(st);
  }

  reconnected(): void {
    for (const g of this.groups.all()) g.resend();
  }

  get waiting(): number {
    return this.groups.waiting;
  }

  /**
   * The group of this request: shared by one node's waits on an ID (same
   * mode and role), its own for a send or sync. `report()` makes a new
   * group's report id and report, only when the group is new.
   */
  groupFor(job: string, ask: Omit<MessageGroup, 'folded' | 'reportId'>, shared: boolean, report: () => { reportId: string; send: () => Promise<void> }): MsgGroup {
    if (!shared) {
      const own = report();
      return this.add(this.groups.group(ask.msg, `send ${own.reportId}`, () => ({ meta: { ...ask, reportId: own.reportId, folded: false }, send: own.send })));
    }
    return this.add(
      this.groups.group(ask.msg, `${job} ${ask.mode ?? ''} ${ask.role ?? ''}`, () => {
        const made = report();
        return { meta: { ...ask, reportId: made.reportId, folded: true }, send: made.send };
      }),
    );
  }

  private add(g: MsgGroup): MsgGroup {
    this.byReport.set(g.meta.reportId, g);
    return g;
  }
}

/** What a legacy message request asks. */
export interface MessageAsk {
  op: 'send' | 'wait' | 'sync';
  msg: string;
  data?: MsgData;
  mode?: WaitMode;
  role?: string;
}

/**
 * Sends and/or waits for one legacy request: resolves with the state that
 * answers it, `retry` at `limitMs`, `gone` when `signal` fires; rejects with
 * ClusterAbortedError (the cluster aborted), RejectedError (the workers
 * refused it) or the report's own error.
 */
export async function holdMessage(ctx: ProxyContext, id: NodeIdentity, nodes: Group, ask: MessageAsk, limitMs: number, signal: GoneSignal): Promise<Held<MessageState>> {
  const lease = await ctx.shared.acquire(ctx.subjects.message(id.cluster), () => new MessageRouter(id.cluster));
  const barriers = await barrierLease(ctx, id.cluster).catch((err: unknown) => {
    lease.release();
    throw err;
  });
  try {
    return await holdWait<MessageState>(limitMs, signal, (finish) => {
      const unAbort = barriers.router.onAbort((reason) => finish(new ClusterAbortedError(reason)));
      const kind = ask.op === 'wait' ? 'wait_msg' : 'send';
      const group = lease.router.groupFor(id.job, { msg: ask.msg, mode: ask.mode, role: ask.role, nodes }, ask.op === 'wait', () => {
        const reporter = reporterFor(ctx, id, limitMs);
        const reportId = reporter.newReportId(kind);
        const fields = { msg: ask.msg, data: ask.op === 'wait' ? undefined : ask.data, mode: ask.mode, role: ask.role };
        return { reportId, send: () => reporter.report(kind, { id: reportId, message: fields }) };
      });
      const leave = group.join(finish);
      lease.router.check(group);
      group.ensureSent();
      return () => {
        unAbort();
        leave();
      };
    });
  } finally {
    barriers.release();
    lease.release();
  }
}
