/**
 * Why a report or request was refused: the one set of codes that the Lua
 * scripts' answers (src/fold/lua: `refusal(CODE, ...)`, `fail(CODE, ...)`),
 * the membership check, the bridge and the wire replies use.
 * test/core/refusal-codes.test.ts checks that every code a script can
 * return is here.
 */
export const RefusalCode = {
  /** No such cluster (never created, or deleted). */
  UnknownCluster: 'UNKNOWN_CLUSTER',
  /** The token is not the cluster's. */
  BadToken: 'BAD_TOKEN',
  /** No such node job, or not a node of the cluster. */
  UnknownJob: 'UNKNOWN_JOB',
  /** The job (or the subject) belongs to another cluster. */
  OtherCluster: 'OTHER_CLUSTER',
  /** A barrier name timeout.lua does not know. */
  BadBarrier: 'BAD_BARRIER',
  /** Not JSON, a schema error, or info that does not fit the node. */
  Invalid: 'INVALID',
  /** Over the size limit of a report or of a NATS message. */
  TooLarge: 'TOO_LARGE',
  /** Redis could not take it now (out of memory, down, a full queue): worth retrying. */
  Unavailable: 'UNAVAILABLE',
} as const;
export type RefusalCode = (typeof RefusalCode)[keyof typeof RefusalCode];

/** Every refusal code. */
export const REFUSAL_CODES: readonly RefusalCode[] = Object.values(RefusalCode);
