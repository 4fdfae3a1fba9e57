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
 * any abort: the barrier subject and the event subject). Throws
 * {@link AlreadyEndedError} when it had ended, {@link NotFoundError} when unknown.
 */
export async function cancelCluster(store: ClusterStore, cid: string, who: string, note: string | undefined, maxEvents = 100_000): Promise<FoldOutcome & { ok: true }> {
  const k = store.keys;
  const reason = cancelReason(who, note);
  const raw = await store.redis.csEndCluster(...k.endKeys(cid), cid, reason, maxEvents, EndCause.Cancelled, who);
  const outcome = parseOutcome(raw);
  if (!outcome.ok) {
    if (outcome.code === 'UNKNOWN_CLUSTER') throw new NotFoundError(outcome.reason);
    throw new AlreadyEndedError(outcome.reason);
  }
  return outcome;
}
