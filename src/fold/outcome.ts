import type { Barrier, NodeState, ReportKind, Result } from '../core/states';

/** A barrier's answer, as the workers publish it on `<prefix>.cluster.<cid>.barrier`. */
export interface Resolution {
  barrier: Barrier;
  result: Result;
  reason?: string;
  /** Server time (ms) the barrier resolved. */
  at: number;
  /** From the previous barrier's resolution (or the cluster's creation) to this one, ms. */
  took_ms?: number;
}

/** One entry of a cluster's event log (Redis stream id in `id`). */
export type ClusterEvent =
  | {
      id: string;
      v: 1;
      type: 'report';
      cluster: string;
      job: string;
      roles: string;
      report: ReportKind;
      state: NodeState;
      from: NodeState;
      ip?: string;
      reason?: string;
      at: number;
      sent_at?: number;
    }
  | ({ id: string; v: 1; type: 'resolution'; cluster: string } & Resolution)
  | { id: string; v: 1; type: 'submitted'; cluster: string; nodes: number; roles: string; spec: string; at: number };

export const RejectCode = {
  UnknownCluster: 'UNKNOWN_CLUSTER',
  BadToken: 'BAD_TOKEN',
  UnknownJob: 'UNKNOWN_JOB',
  OtherCluster: 'OTHER_CLUSTER',
  BadBarrier: 'BAD_BARRIER',
  Invalid: 'INVALID',
  TooLarge: 'TOO_LARGE',
} as const;
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode];

export type FoldOutcome =
  | {
      ok: true;
      dup: boolean;
      changed: boolean;
      heartbeat?: boolean;
      state: NodeState;
      /** Barriers this report resolved. */
      resolutions: (Resolution & { event?: string })[];
      /** The answer to the barrier this report waits at, when that barrier is resolved. */
      answer?: Resolution;
      events: ClusterEvent[];
    }
  | { ok: false; code: RejectCode; reason: string };

/** Lua's cjson writes an empty table as `{}`; the outcome's lists are lists. */
export function asList<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

/** An outcome from a script: its JSON text, or one element of a batch's decoded list. */
export function parseOutcome(raw: unknown): FoldOutcome {
  const o = (typeof raw === 'string' ? JSON.parse(raw) : raw) as FoldOutcome;
  if (o.ok) {
    o.resolutions = asList(o.resolutions);
    o.events = asList(o.events);
  }
  return o;
}
