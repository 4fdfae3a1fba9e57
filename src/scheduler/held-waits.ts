/*
 * Design note: waits held in memory, grouped by what answers them.
 *
 * The legacy endpoint holds one HTTP request per lkp client wait, often
 * thousands on one cluster (a lab's machines all at one barrier, or one
 * message ID, for hours, each re-asking after every long-poll limit). A wait
 * is a `Waiter` in a `ReportGroup`: the waits of one node for one answer
 * (its barrier, its message wait) share one group, and the group sends the
 * node's report once, under one report id, however many of that node's
 * requests wait on it (a repeated report would fold to nothing new, yet cost
 * a BullMQ job, a fold and a publish each). The router of the subject
 * (barrier-waits.ts, message-waits.ts) settles a whole group with one
 * delivery. A group lives while it has waiters; the next request after it
 * was answered makes a new group and sends a new report.
 */

/** One held request's way out: the answer, or an error for the route to report. */
export type Settle<T> = (outcome: T | Error) => void;

/** What one held wait ended with: the answer, `retry` at the time limit, or `gone` when the client left. */
export type Held<T> = T | 'retry' | 'gone';

/** How a held wait hears that its client went away: the part of an AbortSignal holdWait uses (an AbortSignal is one). */
export interface GoneSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A GoneSignal for one HTTP request, fired by `fire()`. An AbortController
 * per request (an EventTarget, its signal, option checks on every listener)
 * was a twentieth of the scheduler's CPU while thousands of waits opened.
 */
export class ClientGone implements GoneSignal {
  aborted = false;
  private listeners: (() => void)[] = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners.indexOf(listener);
    if (i >= 0) this.listeners.splice(i, 1);
  }

  /** Marks the client gone and tells every listener, once. */
  fire(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l();
  }
}

/**
 * Holds one wait: `register` hooks `finish` to whatever answers it and
 * returns how to unhook it. Resolves with the answer, `retry` after
 * `limitMs` (never when `undefined`) or `gone` when `signal` fires; rejects
 * with an error handed to `finish`.
 */
export function holdWait<T>(limitMs: number | undefined, signal: GoneSignal, register: (finish: Settle<T>) => () => void): Promise<Held<T>> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve('gone');
    let done = false;
    let unhook: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const end = (outcome: Held<T> | Error): void => {
      if (done) return;
      done = true;
      unhook?.();
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', onGone);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const onGone = (): void => end('gone');
    signal.addEventListener('abort', onGone, { once: true });
    if (limitMs !== undefined) timer = setTimeout(() => end('retry'), limitMs);
    const hook = register((o) => end(o));
    // An answer handed over inside register() ended the wait before the hook was known.
    if (done) hook();
    else unhook = hook;
  });
}

/** The waits of one node for one answer, sharing one report. */
export class ReportGroup<M, T> {
  readonly waiters = new Set<Settle<T>>();
  private sent: Promise<void> | undefined;

  constructor(
    readonly key: string,
    readonly meta: M,
    /** Sends the group's report (always under the same report id). */
    private readonly send: () => Promise<void>,
    private readonly onEmpty: (g: ReportGroup<M, T>) => void,
  ) {}

  /** Sends the report unless it was sent already; a report that fails settles every waiter with its error. */
  ensureSent(): void {
    if (this.sent) return;
    const sent = this.send();
    this.sent = sent;
    sent.catch((err: unknown) => {
      if (this.sent === sent) this.sent = undefined;
      this.settle(err instanceof Error ? err : new Error(String(err)));
    });
  }

  /** Sends the report again (after a reconnect: its answer may have been missed). */
  resend(): void {
    this.sent = undefined;
    if (this.waiters.size > 0) this.ensureSent();
  }

  join(settle: Settle<T>): () => void {
    this.waiters.add(settle);
    return () => this.leave(settle);
  }

  private leave(settle: Settle<T>): void {
    if (this.waiters.delete(settle) && this.waiters.size === 0) this.onEmpty(this);
  }

  /** Answers every waiter of the group (each leaves it; the last one's leaving drops the group). */
  settle(outcome: T | Error): void {
    for (const w of [...this.waiters]) w(outcome);
  }
}

/** Groups by bucket (what one delivery concerns: a barrier, a message ID) and key (whose report). */
export class ReportGroups<M, T> {
  private readonly buckets = new Map<string, Map<string, ReportGroup<M, T>>>();

  /** `onDrop`: told of each group that lost its last waiter. */
  constructor(private readonly onDrop?: (g: ReportGroup<M, T>) => void) {}

  /**
   * The group of `key` in `bucket`; when there is none, `make()` gives the
   * new group's meta and report (called only then: a request that joins a
   * group makes no report, report id or client of its own).
   */
  group(bucket: string, key: string, make: () => { meta: M; send: () => Promise<void> }): ReportGroup<M, T> {
    let groups = this.buckets.get(bucket);
    if (!groups) {
      groups = new Map();
      this.buckets.set(bucket, groups);
    }
    const inBucket = groups;
    let g = inBucket.get(key);
    if (!g) {
      const { meta, send } = make();
      g = new ReportGroup<M, T>(key, meta, send, (empty) => {
        if (inBucket.get(empty.key) === empty) inBucket.delete(empty.key);
        if (inBucket.size === 0 && this.buckets.get(bucket) === inBucket) this.buckets.delete(bucket);
        this.onDrop?.(empty);
      });
      inBucket.set(key, g);
    }
    return g;
  }

  /** The groups of one bucket (a copy: settling groups removes them). */
  in(bucket: string): ReportGroup<M, T>[] {
    return [...(this.buckets.get(bucket)?.values() ?? [])];
  }

  all(): ReportGroup<M, T>[] {
    return [...this.buckets.values()].flatMap((m) => [...m.values()]);
  }

  /** Waits held in every group. */
  get waiting(): number {
    let n = 0;
    for (const m of this.buckets.values()) for (const g of m.values()) n += g.waiters.size;
    return n;
  }
}
