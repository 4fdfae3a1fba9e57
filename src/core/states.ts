/**
 * The vocabulary of a cluster: what a node may report, the states a node moves
 * through, the barriers, and how a report maps onto a state (DESIGN §4,
 * Compass-CI's mapping).
 */
export const ReportKind = {
  WriteState: 'write_state',
  WaitStart: 'wait_start',
  WaitReady: 'wait_ready',
  WaitFinish: 'wait_finish',
  Finished: 'finished',
  Failed: 'failed',
  Abort: 'abort',
  Heartbeat: 'heartbeat',
  /** A named message (LAVA's lava-send); with `mode` it also waits for it (lava-sync). */
  Send: 'send',
  /** A wait for a named message (lava-wait, lava-wait-all), recorded for watch and the timeline. */
  WaitMsg: 'wait_msg',
} as const;
export type ReportKind = (typeof ReportKind)[keyof typeof ReportKind];
export const REPORT_KINDS = Object.values(ReportKind) as [ReportKind, ...ReportKind[]];

export const Barrier = { Start: 'start', Ready: 'ready', Finish: 'finish' } as const;
export type Barrier = (typeof Barrier)[keyof typeof Barrier];
export const BARRIERS = [Barrier.Start, Barrier.Ready, Barrier.Finish] as const;

/** A barrier's answer: the barrier's own name, or abort. */
export type Result = Barrier | 'abort';

/** Node states in the order they may move; `abort` is final. `""` is "submitted". */
export const NODE_STATES = ['', 'start', 'ready', 'finish', 'abort'] as const;
export type NodeState = (typeof NODE_STATES)[number];

/** The barrier a waiting report waits for, if it waits at all. */
export const WAITS_FOR: Partial<Record<ReportKind, Barrier>> = {
  wait_start: 'start',
  wait_ready: 'ready',
  wait_finish: 'finish',
  finished: 'finish',
};

/** The report a node sends to wait at a barrier. */
export const WAIT_REPORT: Record<Barrier, ReportKind> = {
  start: 'wait_start',
  ready: 'wait_ready',
  finish: 'wait_finish',
};

/** Report kinds about named messages; they move no node state and touch no barrier. */
export const MESSAGE_KINDS: readonly ReportKind[] = [ReportKind.Send, ReportKind.WaitMsg];
