/**
 * Why a cluster ended, and what that means (DESIGN §10): the one table that
 * classifies every end. The fold writes the cause in field `end_cause` of the
 * cluster's meta hash in the same atomic call that ends it (common.lua,
 * timeout.lua, end-cluster.lua; admission writes `not_admitted`); the result,
 * the retries and the docs (docs/operating-clusters.md) read this table.
 */
export const EndCause = {
  /** Every barrier resolved, the `finish` last. */
  Finished: 'finished',
  /** A program's own non-zero exit (a test, or a daemon that died): the thing under test failed. */
  TestFailed: 'test_failed',
  /** A node could not run its job (missing program, bad scripts tree, direct network). */
  SetupError: 'setup_error',
  /** A node stopped sending heartbeats (its agent or machine died). */
  DeadNode: 'dead_node',
  /** The machine a node job was handed to was lost (its lease lapsed). */
  MachineLost: 'machine_lost',
  /** A barrier reached its deadline (`cluster_timeout`). */
  TimedOut: 'timed_out',
  /** The cluster was not admitted to machines within its admit timeout. */
  NotAdmitted: 'not_admitted',
  /** An operator cancelled it (`cluster-sync cancel`, `DELETE /clusters/:id`). */
  Cancelled: 'cancelled',
  /** A node reported `abort` and said no more (an lkp client's abort, an agent that was stopped). */
  Aborted: 'aborted',
} as const;
export type EndCause = (typeof EndCause)[keyof typeof EndCause];
export const END_CAUSES = Object.values(EndCause) as [EndCause, ...EndCause[]];

/** The one word a result gives a cluster. */
export const Verdict = {
  Passed: 'passed',
  Failed: 'failed',
  Aborted: 'aborted',
  Cancelled: 'cancelled',
  TimedOut: 'timed_out',
  NotAdmitted: 'not_admitted',
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];
export const VERDICTS = Object.values(Verdict) as [Verdict, ...Verdict[]];

/** Whose the end is: the lab's (retried with `cluster_retries`), the test's, or an operator's (never retried). */
export type EndKind = 'none' | 'infrastructure' | 'test' | 'operator';

export interface EndClass {
  /** The verdict of a cluster that ended so (a `finished` one still passes only if its success policy holds). */
  verdict: Verdict;
  kind: EndKind;
  /** Whether `cluster_retries` submits the cluster again after such an end. */
  retried: boolean;
  /** One line for the docs and `cluster-sync result`. */
  meaning: string;
}

/** The classification: every cause, its verdict, whose it is and whether it is retried. */
export const END_CLASSES: Readonly<Record<EndCause, EndClass>> = {
  finished: { verdict: 'passed', kind: 'none', retried: false, meaning: 'every barrier resolved; the success policy decides passed or failed' },
  test_failed: { verdict: 'failed', kind: 'test', retried: false, meaning: "a program's own non-zero exit (test or daemon): never retried" },
  setup_error: { verdict: 'aborted', kind: 'infrastructure', retried: true, meaning: 'a node could not set up its job (missing program, scripts tree, network)' },
  dead_node: { verdict: 'aborted', kind: 'infrastructure', retried: true, meaning: 'a node stopped sending heartbeats (agent or machine died)' },
  machine_lost: { verdict: 'aborted', kind: 'infrastructure', retried: true, meaning: 'the machine a node job was handed to lost its lease' },
  timed_out: { verdict: 'timed_out', kind: 'infrastructure', retried: true, meaning: 'a barrier reached its deadline (cluster_timeout)' },
  not_admitted: { verdict: 'not_admitted', kind: 'infrastructure', retried: true, meaning: 'no machines for it within its admit timeout' },
  cancelled: { verdict: 'cancelled', kind: 'operator', retried: false, meaning: 'an operator cancelled it: ends it for good' },
  aborted: { verdict: 'aborted', kind: 'test', retried: false, meaning: 'a node reported abort without a cause (lkp abort, agent stopped): not retried' },
};

export function isEndCause(value: unknown): value is EndCause {
  return typeof value === 'string' && (END_CAUSES as readonly string[]).includes(value);
}

/**
 * The cause of an end whose meta has no `end_cause` (a cluster that ended
 * before the field existed), read from its final state and abort reason as
 * the fold words them. Mirrors `cause_of` in common.lua.
 */
export function causeFromReason(final: 'finish' | 'abort', reason: string | undefined): EndCause {
  if (final === 'finish') return EndCause.Finished;
  const r = reason ?? '';
  if (/^cancelled by /.test(r)) return EndCause.Cancelled;
  if (/^barrier \w+ timed out/.test(r)) return EndCause.TimedOut;
  if (/^not admitted/.test(r)) return EndCause.NotAdmitted;
  if (/reported abort: no heartbeat/.test(r)) return EndCause.DeadNode;
  if (/reported abort: machine lost/.test(r)) return EndCause.MachineLost;
  if (/reported failed: setup error/.test(r)) return EndCause.SetupError;
  if (/reported failed/.test(r)) return EndCause.TestFailed;
  return EndCause.Aborted;
}
