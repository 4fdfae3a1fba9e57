import { EventEmitter } from 'node:events';
import type { Subscription } from 'nats';
import { decodeText } from '../bus/connect';
import type { MsgData, WaitMode } from '../bus/messages';
import { ClusterAbortedError, InvalidInputError, RejectedError, TimeoutError, errorMessage } from '../core/errors';
import { formatDuration } from '../core/duration';
import { normalizeMessage } from '../fold/outcome';
import type { MessageState } from '../fold/outcome';
import type { NodeClient } from './node-client';

/*
 * Named messages between the nodes of a cluster (LAVA MultiNode), on top of
 * a started NodeClient.
 *
 * Design: `start()` subscribes to `<prefix>.cluster.<cid>.msg` once and keeps,
 * per message ID, the newest state it heard (highest `seq`). A send is a
 * `send` report; it returns once the workers published the state that folded
 * it (or refused it, with the reason). A wait subscribes first (start), then
 * reports `wait_msg`, whose fold publishes the ID's current state: a wait for
 * an ID already sent answers at once, and every later change is pushed. The
 * wait ends when the state satisfies it, when the cluster aborts (the barrier
 * subject's abort, or a state carrying `abort`), or at its time limit, which
 * aborts nothing. After a NATS reconnect, open sends and waits are sent again
 * under the same report id, and the fold publishes the state again.
 */

/** One node of the cluster: job id -> its roles (space separated). */
export type Group = Record<string, string>;

export interface MessageWaitOptions {
  /** Give up after this long, ms (TimeoutError; the cluster is not aborted). Default: no limit. */
  timeoutMs?: number;
  /** Aborting it ends the wait with the signal's reason. */
  signal?: AbortSignal;
}

/** Does `state` satisfy a wait of `mode` (and `role`)? Returns the nodes still missing. */
export function missingSenders(state: MessageState | undefined, group: Group, mode: WaitMode, role?: string): string[] {
  const sent = new Set((state?.senders ?? []).map((s) => s.job));
  if (mode === 'any') return sent.size > 0 ? [] : ['any node'];
  return Object.keys(group).filter((job) => (role === undefined || hasRole(group[job] ?? '', role)) && !sent.has(job));
}

export function hasRole(roles: string, role: string): boolean {
  return roles.split(/\s+/).includes(role);
}

/**
 * The cache file's lines, in LAVA's formats: `key=value` for lava-wait; for
 * lava-wait-all and lava-sync the same prefixed with the sender's job id and
 * a colon. Senders in send order, keys sorted.
 */
export function cacheLines(state: MessageState, prefixed: boolean): string[] {
  const lines: string[] = [];
  for (const s of state.senders) {
    for (const key of Object.keys(s.data).sort()) lines.push(`${prefixed ? `${s.job}:` : ''}${key}=${s.data[key] ?? ''}`);
  }
  return lines;
}

export class MessageClient {
  private sub: Subscription | undefined;
  private readonly states = new Map<string, MessageState>();
  /** States that answer a report id (the fold of that send or wait). */
  private readonly byReport = new Map<string, (s: MessageState) => void>();
  private readonly emitter = new EventEmitter();
  /** Set when NATS refused or closed the message subscription (a lab's permissions without `.msg`). */
  private failure: Error | undefined;

  constructor(
    readonly node: NodeClient,
    readonly group: Group,
  ) {
    this.emitter.setMaxListeners(0);
  }

  async start(): Promise<void> {
    if (this.sub) return;
    await this.node.start();
    const subject = this.node.subjects.message(this.node.id.cluster);
    this.sub = this.node.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          this.failure = new Error(`cannot hear named messages on ${subject}: ${err.message} (may this NATS user subscribe to it? see cluster-sync nats-config)`);
          this.emitter.emit('failure', this.failure);
          return;
        }
        try {
          this.hear(normalizeMessage(JSON.parse(decodeText(msg.data)) as MessageState));
        } catch {
          /* a malformed broadcast is ignored */
        }
      },
    });
    await this.node.nc.flush();
  }

  private hear(state: MessageState): void {
    if (state.cluster !== this.node.id.cluster || typeof state.msg !== 'string') return;
    const known = this.states.get(state.msg);
    if (!state.error && (!known || state.seq >= known.seq)) this.states.set(state.msg, state);
    if (state.by) this.byReport.get(state.by.report)?.(state);
    this.emitter.emit('state', state);
  }

  /** The newest state heard of `msg`. */
  state(msg: string): MessageState | undefined {
    return this.states.get(msg);
  }

  private checkRole(mode: WaitMode, role: string | undefined): void {
    if (role === undefined) return;
    if (mode !== 'all') throw new InvalidInputError('wait', 'a role belongs to wait-all');
    if (!Object.values(this.group).some((r) => hasRole(r, role))) {
      throw new InvalidInputError('wait-all', `no node of this cluster has role ${role} (roles: ${[...new Set(Object.values(this.group).flatMap((r) => r.split(/\s+/)))].join(' ')})`);
    }
  }

  /**
   * lava-send: adds this node's `data` to message `msg`; resolves with the
   * message's state once the workers folded it (visible to every node).
   */
  async send(msg: string, data: MsgData = {}, options: MessageWaitOptions = {}): Promise<MessageState> {
    await this.start();
    return this.run('send', msg, data, undefined, undefined, options);
  }

  /** lava-wait (`any`) and lava-wait-all (`all`, optionally of `role`): resolves with the state that satisfied the wait. */
  async wait(msg: string, mode: WaitMode, role: string | undefined, options: MessageWaitOptions = {}): Promise<MessageState> {
    this.checkRole(mode, role);
    await this.start();
    return this.run('wait_msg', msg, undefined, mode, role, options);
  }

  /** lava-sync: send, then wait until every node sent `msg` (one report). */
  async sync(msg: string, data: MsgData = {}, options: MessageWaitOptions = {}): Promise<MessageState> {
    await this.start();
    return this.run('send', msg, data, 'all', undefined, options);
  }

  private run(kind: 'send' | 'wait_msg', msg: string, data: MsgData | undefined, mode: WaitMode | undefined, role: string | undefined, options: MessageWaitOptions): Promise<MessageState> {
    const id = this.node.newReportId(kind);
    const fields = { msg, data, mode, role };
    return new Promise<MessageState>((resolve, reject) => {
      let folded = kind === 'wait_msg';
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const cleanups: (() => void)[] = [];
      const finish = (err: Error | undefined, state?: MessageState): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        for (const c of cleanups) c();
        if (err) reject(err);
        else resolve(state as MessageState);
      };
      const check = (): void => {
        const st = this.states.get(msg);
        if (st?.abort) return finish(new ClusterAbortedError(st.abort));
        if (!folded || mode === undefined) return;
        if (missingSenders(st, this.group, mode, role).length === 0) finish(undefined, st);
      };
      const onState = (s: MessageState): void => {
        if (s.msg === msg) check();
      };
      // Anything registered after the wait ended (an abort heard at once) is undone at once.
      const add = (cleanup: () => void): void => {
        if (settled) cleanup();
        else cleanups.push(cleanup);
      };
      this.emitter.on('state', onState);
      add(() => this.emitter.off('state', onState));
      // The fold of this very report: a refusal, or (for a send) the moment it is visible to all.
      this.byReport.set(id, (s) => {
        if (s.error) return finish(new RejectedError(s.error));
        if (s.abort) return finish(new ClusterAbortedError(s.abort));
        if (!folded) {
          folded = true;
          if (mode === undefined) return finish(undefined, this.states.get(msg) ?? s);
        }
        check();
      });
      add(() => this.byReport.delete(id));
      add(this.node.onAbort((a) => finish(new ClusterAbortedError(a.reason ?? 'cluster aborted'))));
      const onFailure = (err: Error): void => finish(err);
      if (this.failure) onFailure(this.failure);
      this.emitter.on('failure', onFailure);
      add(() => this.emitter.off('failure', onFailure));
      if (options.timeoutMs !== undefined && !settled) {
        const ms = options.timeoutMs;
        timer = setTimeout(() => finish(new TimeoutError(this.timeoutText(msg, mode, role, ms))), ms);
      }
      const signal = options.signal;
      if (signal) {
        const onSignal = (): void => finish(new Error(`stopped: ${errorMessage(signal.reason ?? 'aborted')}`));
        if (signal.aborted) onSignal();
        signal.addEventListener('abort', onSignal, { once: true });
        add(() => signal.removeEventListener('abort', onSignal));
      }
      const send = (): void => {
        this.node.report(kind, { id, message: fields }).catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
      };
      add(this.node.onReconnect(send));
      // An ID known to be satisfied answers at once, as LAVA's repeat calls do; the wait is still recorded.
      if (kind === 'wait_msg') check();
      if (!settled || (kind === 'wait_msg' && !this.node.aborted)) send();
    });
  }

  private timeoutText(msg: string, mode: WaitMode | undefined, role: string | undefined, ms: number): string {
    if (mode === undefined) return `not confirmed by the workers within ${formatDuration(ms)}`;
    const missing = missingSenders(this.states.get(msg), this.group, mode, role);
    const who = mode === 'any' ? 'no node sent it' : `still missing: ${missing.map((j) => `${j} (${this.group[j] ?? '?'})`).join(', ')}`;
    return `timed out after ${formatDuration(ms)}: ${who}`;
  }

  async close(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }
}
