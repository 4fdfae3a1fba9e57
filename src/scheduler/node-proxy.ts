import type { NatsConnection, Subscription } from 'nats';
import { decodeText } from '../bus/connect';
import type { ReportInfo } from '../bus/messages';
import type { Subjects } from '../bus/subjects';
import { NodeClient } from '../client/node-client';
import type { NodeIdentity } from '../client/node-client';
import { WAITS_FOR } from '../core/states';
import type { ReportKind, Result } from '../core/states';
import type { ClusterEvent } from '../fold/outcome';

/**
 * The legacy endpoint speaks for an lkp node that cannot talk NATS: it
 * reports like a node (with the cluster's token, through the workers) and
 * waits on the subjects the workers publish, never by reading Redis in a loop.
 *
 * Every wait subscribes before it reports, so it cannot miss the answer, and
 * unsubscribes on every way out: the answer, the time limit, or the HTTP
 * client going away (`signal`).
 */
export interface ProxyContext {
  nc: NatsConnection;
  subjects: Subjects;
}

export type WaitKind = 'wait_start' | 'wait_ready' | 'wait_finish' | 'finished';

/** What one wait ended with: the barrier's result, `retry` at the time limit, or `gone` when the client left. */
export type WaitOutcome = Result | 'retry' | 'gone';

/** Waits for one message on `subject` that `match` accepts, or the limit (none when `undefined`), or the signal. */
function waitFor<T>(
  ctx: ProxyContext,
  subject: string,
  match: (body: unknown) => T | undefined,
  limitMs: number | undefined,
  signal: AbortSignal,
  send: () => Promise<void>,
): Promise<T | 'retry' | 'gone'> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve('gone');
    let done = false;
    const finish = (outcome: T | 'retry' | 'gone' | Error): void => {
      if (done) return;
      done = true;
      sub.unsubscribe();
      clearTimeout(timer);
      signal.removeEventListener('abort', onGone);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const sub: Subscription = ctx.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        let body: unknown;
        try {
          body = JSON.parse(decodeText(msg.data));
        } catch {
          return;
        }
        const hit = match(body);
        if (hit !== undefined) finish(hit);
      },
    });
    const onGone = (): void => finish('gone');
    const timer = limitMs === undefined ? undefined : setTimeout(() => finish('retry'), limitMs);
    signal.addEventListener('abort', onGone, { once: true });
    // The subscription is known to the server before the report goes out.
    ctx.nc
      .flush()
      .then(async () => {
        if (!done) await send();
      })
      .catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
  });
}

function clientFor(ctx: ProxyContext, id: NodeIdentity, giveUpAfterMs: number): NodeClient {
  return new NodeClient(ctx.nc, ctx.subjects, id, { giveUpAfterMs });
}

/** How long a report of a wait held without limit keeps trying to reach the workers, ms. */
const UNLIMITED_WAIT_REPORT_GIVE_UP_MS = 600_000;

/**
 * Reports `kind` for the node and waits for its barrier's resolution, or
 * `limitMs` (then `retry`; `undefined`: no limit, the barrier's own deadline
 * ends the wait with `abort`). A barrier resolved before is answered at once:
 * the workers publish the stored answer again for a repeated wait report.
 */
export async function waitAtBarrier(ctx: ProxyContext, id: NodeIdentity, kind: WaitKind, limitMs: number | undefined, signal: AbortSignal): Promise<WaitOutcome> {
  const barrier = WAITS_FOR[kind];
  const client = clientFor(ctx, id, limitMs ?? UNLIMITED_WAIT_REPORT_GIVE_UP_MS);
  try {
    return await waitFor<Result>(
      ctx,
      ctx.subjects.barrier(id.cluster),
      (b) => {
        const m = b as { cluster?: string; barrier?: string; result?: Result };
        return m.cluster === id.cluster && (m.barrier === barrier || m.result === 'abort') ? m.result : undefined;
      },
      limitMs,
      signal,
      () => client.report(kind),
    );
  } finally {
    await client.close();
  }
}

/**
 * Reports `kind` (with `info`) and waits until the workers folded it: the
 * cluster's event for this node's report. Returns false when the fold was
 * not seen within `limitMs` (the report is durable either way).
 */
export async function reportAndSeeFold(
  ctx: ProxyContext,
  id: NodeIdentity,
  kind: ReportKind,
  info: ReportInfo | undefined,
  limitMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  const client = clientFor(ctx, id, limitMs);
  try {
    const seen = await waitFor<true>(
      ctx,
      ctx.subjects.event(id.cluster),
      (b) => {
        const ev = b as Partial<ClusterEvent> & { job?: string; report?: string };
        return ev.type === 'report' && ev.job === id.job && ev.report === kind ? true : undefined;
      },
      limitMs,
      signal,
      () => client.report(kind, { info }),
    );
    return seen === true;
  } finally {
    await client.close();
  }
}
