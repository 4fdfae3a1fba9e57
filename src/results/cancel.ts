import type { ClusterStore } from '../cluster/store';
import { ClusterSyncError, ErrorCode, NotFoundError } from '../core/errors';
import { parseOutcome } from '../fold/outcome';
import type { FoldOutcome } from '../fold/outcome';
import { EndCause } from './end-cause';

/** Longest operator note kept with a cancel. */
export const MAX_CANCEL_REASON = 512;

/** A cancel of a cluster that had ended: HTTP 409, nothing changed. */
export class AlreadyEndedError extends ClusterSyncError {
  constructor(message: string) {
    super(ErrorCode.Rejected, message);
  }
}

/** The reason every node hears: `cancelled by <who>: <note>`. */
export function cancelReason(who: string, note: string | undefined): string {
  // It reaches every node's output and the event log: no control characters.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const n = (note ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  return `cancelled by ${who}${n ? `: ${n}` : ''}`;
}

/**
 * Ends an open cluster `abort` as an operator (end-cluster.lua, one atomic
 * call): every open barrier resolves abort with the cancel's reason and
 * `end_cause` is `cancelled`. Returns the outcome to publish (the same path as
 * any abort: the barrier subject and the event subject). The same `who`
 * cancelling again gets the first cancel's answer ({@link repeatedCancel}).
 * Throws {@link AlreadyEndedError} when it had ended otherwise,
 * {@link NotFoundError} when unknown.
 */
export async function cancelCluster(store: ClusterStore, cid: string, who: string, note: string | undefined, maxEvents = 100_000): Promise<FoldOutcome & { ok: true }> {
  const k = store.keys;
  const reason = cancelReason(who, note);
  const raw = await store.redis.csEndCluster(...k.endKeys(cid), cid, reason, maxEvents, EndCause.Cancelled, who);
  const outcome = parseOutcome(raw);
  if (!outcome.ok) {
    if (outcome.code === 'UNKNOWN_CLUSTER') throw new NotFoundError(outcome.reason);
    const repeated = await repeatedCancel(store, cid, who);
    if (repeated) return repeated;
    throw new AlreadyEndedError(outcome.reason);
  }
  return outcome;
}

/**
 * The same operator's cancel, sent again after its answer was lost or was a
 * 503 (no replica held it in time, while it had ended the cluster): the
 * answer of the first, as a `dup` outcome whose resolutions are the barriers
 * it resolved (told again: a node that missed the first hears them) and no
 * event. Without `?by=`, every HTTP caller is `api`, so one `api` caller's
 * repeat is another's.
 * Undefined when the cluster ended otherwise, or by someone else's cancel.
 */
async function repeatedCancel(store: ClusterStore, cid: string, who: string): Promise<(FoldOutcome & { ok: true }) | undefined> {
  const [cause, by, note] = await store.redis.hmget(store.keys.meta(cid), 'end_cause', 'ended_by', 'end_note');
  if (cause !== EndCause.Cancelled || by !== who || !note) return undefined;
  // The barriers as any reader sees them (readCluster); the cancel's own are those resolved abort with its reason.
  const resolutions = (await store.readCluster(cid)).barriers.flatMap((b) =>
    b.result === 'abort' && b.reason === note ? [{ barrier: b.barrier, result: 'abort' as const, reason: note, at: b.at ?? 0 }] : [],
  );
  return { ok: true, dup: true, changed: false, state: 'abort', resolutions, events: [] };
}
