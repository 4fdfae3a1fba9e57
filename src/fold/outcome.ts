import type { RefusalCode } from '../core/refusal-codes';
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

/** A wait that a fold released: who, how, and how long since it was registered. */
export interface MessageRelease {
  job: string;
  mode: 'any' | 'all';
  role?: string;
  waited_ms: number;
}

/**
 * A named message's state, as the workers publish it on
 * `<prefix>.cluster.<cid>.msg` after each fold that touched it (messages.lua).
 */
export interface MessageState {
  v: 1;
  cluster: string;
  msg: string;
  /** Grows with every change of this ID; a node keeps the highest it heard. */
  seq: number;
  /** Every node that sent the ID, in send order, with its data. */
  senders: { job: string; roles: string; data: Record<string, string>; at: number }[];
  /** The report this state answers. */
  by?: { job: string; report: string; op: 'send' | 'wait' };
  /** The report was refused (a limit, a role no node has): nothing changed. */
  error?: string;
  /** Waits this fold satisfied. */
  released?: MessageRelease[];
  /** Set once the cluster aborted: the reason. */
  abort?: string;
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
  | {
      id: string;
      v: 1;
      type: 'message';
      cluster: string;
      job: string;
      roles: string;
      /** `send` (lava-send, lava-sync) or `wait` (lava-wait, lava-wait-all). */
      op: 'send' | 'wait';
      msg: string;
      /** The wait this report registered (a send with a mode is lava-sync). */
      mode?: 'any' | 'all';
      role?: string;
      /** Data keys this send carried. */
      keys?: string[];
      released?: MessageRelease[];
      at: number;
      sent_at?: number;
    }
  | { id: string; v: 1; type: 'submitted'; cluster: string; nodes: number; roles: string; spec: string; at: number };

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
      /** For `send` / `wait_msg`: the message's state to publish. */
      message?: MessageState;
    }
  | { ok: false; code: RefusalCode; reason: string };

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
    for (const ev of o.events) {
      if (ev.type === 'message') {
        if (ev.keys !== undefined) ev.keys = asList(ev.keys);
        if (ev.released !== undefined) ev.released = asList(ev.released);
      }
    }
    if (o.message) o.message = normalizeMessage(o.message);
  }
  return o;
}

/** Lists of a message state that Lua may have written as `{}`. */
export function normalizeMessage(m: MessageState): MessageState {
  m.senders = asList(m.senders);
  for (const s of m.senders) if (Array.isArray(s.data)) s.data = {};
  if (m.released !== undefined) m.released = asList(m.released);
  return m;
}
