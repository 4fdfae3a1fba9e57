import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ErrorCode as NatsErrorCode } from 'nats';
import type { NatsConnection, NatsError, Status, Subscription } from 'nats';
import { decodeText, encodeJson } from '../bus/connect';
import type { Report, ReportInfo, ReportReply } from '../bus/messages';
import type { Subjects } from '../bus/subjects';
import { NoRespondersError, RejectedError, TimeoutError, errorMessage } from '../core/errors';
import { WAITS_FOR } from '../core/states';
import type { Barrier, ReportKind } from '../core/states';
import type { Resolution } from '../fold/outcome';

/** Who the node is: from its node job. */
export interface NodeIdentity {
  cluster: string;
  job: string;
  token: string;
}

export interface NodeClientOptions {
  /** How long one report request waits for the workers' reply, ms. Default 2000. */
  requestTimeoutMs?: number;
  /** Longest pause between retries of a report, ms. Default 5000. */
  maxBackoffMs?: number;
  /** Give up on a report after this long without an answer, ms. Default 10 minutes. */
  giveUpAfterMs?: number;
  /** Told about retries and reconnects, one line each. Default: nothing. */
  onNotice?: (line: string) => void;
}

/** A barrier's answer as the node receives it. */
export interface BarrierAnswer extends Resolution {
  cluster: string;
}

type WaitingKind = 'wait_start' | 'wait_ready' | 'wait_finish' | 'finished';

/** The named-message fields of a `send` / `wait_msg` report. */
export type MessageFields = Pick<Report, 'msg' | 'data' | 'mode' | 'role'>;

/**
 * What a test machine uses to talk to cluster-sync: reports with retry and
 * backoff, barrier waits that cannot miss their answer, `roles_ip`, and
 * heartbeats.
 *
 * Design: `start()` subscribes to the cluster's barrier subject once, before
 * any report, and keeps every answer it hears; a wait first looks there.
 * After a NATS reconnect, a wait still open re-sends its wait report, and the
 * workers answer it again from the stored resolution.
 */
export class NodeClient {
  private sub: Subscription | undefined;
  private readonly answers = new Map<Barrier, BarrierAnswer>();
  private abortAnswer: BarrierAnswer | undefined;
  private readonly emitter = new EventEmitter();
  private openWait: { kind: WaitingKind; info: ReportInfo | undefined } | undefined;
  private stopped = false;
  /** The node's info as last sent with write_state; every wait report carries it too. */
  private info: ReportInfo | undefined;
  /** nats.js status iterators are QueuedIterators: stop() ends the loop and frees the listener. */
  private statusIter: (AsyncIterable<Status> & { stop?: () => void }) | undefined;
  private readonly opts: Required<NodeClientOptions>;

  constructor(
    readonly nc: NatsConnection,
    readonly subjects: Subjects,
    readonly id: NodeIdentity,
    options: NodeClientOptions = {},
  ) {
    this.opts = {
      requestTimeoutMs: options.requestTimeoutMs ?? 2000,
      maxBackoffMs: options.maxBackoffMs ?? 5000,
      giveUpAfterMs: options.giveUpAfterMs ?? 600_000,
      onNotice: options.onNotice ?? (() => undefined),
    };
    this.emitter.setMaxListeners(0);
  }

  /** Subscribes to the cluster's barrier subject; call before the first report. */
  async start(): Promise<void> {
    if (this.sub) return;
    this.sub = this.nc.subscribe(this.subjects.barrier(this.id.cluster), {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.hear(JSON.parse(decodeText(msg.data)) as BarrierAnswer);
        } catch {
          /* not ours to judge; a malformed broadcast is ignored */
        }
      },
    });
    // The server has the subscription before any report goes out. A flush cut by a NATS restart (DISCONNECT)
    // needs no retry: nats.js sends the subscription again on reconnect, before anything published after it.
    await this.nc.flush().catch((err: unknown) => {
      if (this.nc.isClosed()) throw err;
    });
    this.statusIter = this.nc.status();
    void this.watchReconnects(this.statusIter);
  }

  private hear(answer: BarrierAnswer): void {
    if (answer.cluster !== this.id.cluster) return;
    if (answer.result === 'abort' && !this.abortAnswer) {
      this.abortAnswer = answer;
      this.emitter.emit('abort', answer);
    }
    if (!this.answers.has(answer.barrier)) {
      this.answers.set(answer.barrier, answer);
      this.emitter.emit('answer', answer);
    }
  }

  private async watchReconnects(statuses: AsyncIterable<Status>): Promise<void> {
    for await (const s of statuses) {
      if (this.stopped) return;
      if (s.type === 'reconnect') this.emitter.emit('reconnect');
      if (s.type === 'reconnect' && this.openWait) {
        this.opts.onNotice(`reconnected to NATS; sending ${this.openWait.kind} again`);
        const w = this.openWait;
        this.report(w.kind, { info: w.info }).catch((err: unknown) => this.opts.onNotice(`re-sending ${w.kind} failed: ${errorMessage(err)}`));
      }
    }
  }

  /** The abort answer, once any barrier resolved `abort`. */
  get aborted(): BarrierAnswer | undefined {
    return this.abortAnswer;
  }

  /** Calls `fn` once, when the cluster aborts (now, if it already has). Returns a function that forgets `fn`. */
  onAbort(fn: (answer: BarrierAnswer) => void): () => void {
    if (this.abortAnswer) {
      fn(this.abortAnswer);
      return () => undefined;
    }
    this.emitter.once('abort', fn);
    return () => this.emitter.off('abort', fn);
  }

  /** Calls `fn` after each reconnect to NATS (to send open waits again). Returns a function that forgets `fn`. */
  onReconnect(fn: () => void): () => void {
    this.emitter.on('reconnect', fn);
    return () => this.emitter.off('reconnect', fn);
  }

  /** A fresh report id: readable in logs, unique, a valid BullMQ job id. */
  newReportId(kind: ReportKind): string {
    return `${this.id.job}.${kind}.${randomBytes(6).toString('hex')}`;
  }

  /**
   * Sends one report and waits until the workers accepted it (it is then
   * durable). Retries with backoff when nobody answers; a rejection throws
   * RejectedError with the workers' reason. `extra.id` sends it under a
   * given report id (a repeat of a report folds nothing twice).
   */
  async report(kind: ReportKind, extra: { info?: ReportInfo; reason?: string; id?: string; message?: MessageFields } = {}): Promise<void> {
    if (kind === 'write_state' && extra.info) this.info = { ...this.info, ...extra.info };
    const report: Report = { v: 1, id: extra.id ?? this.newReportId(kind), cluster: this.id.cluster, job: this.id.job, state: kind, at: Date.now(), token: this.id.token };
    if (extra.info) report.info = extra.info;
    if (extra.reason) report.reason = extra.reason.slice(0, 1024);
    if (extra.message) Object.assign(report, extra.message);
    const subject = this.subjects.report(this.id.cluster);
    const giveUp = Date.now() + this.opts.giveUpAfterMs;
    let delay = 100;
    for (let attempt = 1; ; attempt++) {
      let problem: string;
      try {
        const msg = await this.nc.request(subject, encodeJson(report), { timeout: this.opts.requestTimeoutMs });
        const reply = JSON.parse(decodeText(msg.data)) as ReportReply;
        if (reply.ok) return;
        if (!reply.retryable) throw new RejectedError(reply.reason);
        problem = reply.reason;
      } catch (err) {
        if (err instanceof RejectedError) throw err;
        const code = (err as NatsError).code;
        if (code === NatsErrorCode.NoResponders) problem = new NoRespondersError(subject).message;
        else if (code === NatsErrorCode.Timeout) problem = `no reply within ${this.opts.requestTimeoutMs} ms`;
        else problem = errorMessage(err);
      }
      if (this.stopped) throw new Error(`node client stopped while sending ${kind}`);
      // A connection closed on purpose (its process is stopping) never comes back: retrying would only
      // keep the process alive until the give-up, 10 minutes for the scheduler's legacy reports.
      if (this.nc.isClosed()) throw new Error(`the NATS connection was closed while sending ${kind}: ${problem}`);
      if (Date.now() + delay > giveUp) throw new TimeoutError(`gave up sending ${kind} after ${attempt} attempts: ${problem}`);
      this.opts.onNotice(`${kind}: ${problem}; retrying in ${delay} ms (attempt ${attempt})`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, this.opts.maxBackoffMs);
    }
  }

  /**
   * Reports a waiting state (`wait_start`, `wait_ready`, `wait_finish` or
   * `finished`) and resolves with the barrier's answer; the answer is
   * `abort` when the cluster aborted. With `timeoutMs`, throws TimeoutError.
   */
  async wait(kind: WaitingKind, options: { info?: ReportInfo; timeoutMs?: number } = {}): Promise<BarrierAnswer> {
    await this.start();
    // The wait carries the node's info as well: its fold may overtake the write_state's
    // (folds run concurrently), and roles_ip after the barrier must see this node's ip.
    if (options.info === undefined && this.info !== undefined) options = { ...options, info: this.info };
    const barrier = WAITS_FOR[kind] as Barrier;
    const known = this.abortAnswer ?? this.answers.get(barrier);
    if (known) {
      // Still tell the workers where this node is; the answer is already here.
      await this.report(kind, { info: options.info });
      return known;
    }
    return new Promise<BarrierAnswer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (a: BarrierAnswer): void => {
        if (a.barrier !== barrier && a.result !== 'abort') return;
        cleanup();
        resolve(a);
      };
      const cleanup = (): void => {
        this.emitter.off('answer', done);
        this.emitter.off('abort', done);
        if (timer) clearTimeout(timer);
        this.openWait = undefined;
      };
      this.emitter.on('answer', done);
      this.emitter.on('abort', done);
      this.openWait = { kind, info: options.info };
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(new TimeoutError(`no answer at barrier ${barrier} within ${options.timeoutMs} ms`));
        }, options.timeoutMs);
      }
      this.report(kind, { info: options.info }).catch((err: unknown) => {
        cleanup();
        reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
  }

  /** Compass-CI's roles_ip: `direct_ROLE_ips=IPS` and `ROLE=IP` for every node and role. */
  async rolesIp(): Promise<string[]> {
    const msg = await this.nc.request(this.subjects.query(this.id.cluster), encodeJson({ v: 1, cluster: this.id.cluster, job: this.id.job, token: this.id.token, what: 'roles_ip' }), {
      timeout: this.opts.requestTimeoutMs * 2,
    });
    const reply = JSON.parse(decodeText(msg.data)) as { ok: boolean; roles_ip?: string[]; reason?: string };
    if (!reply.ok || !reply.roles_ip) throw new RejectedError(reply.reason ?? 'no roles_ip in the answer');
    return reply.roles_ip;
  }

  /** Sends `heartbeat` every `intervalMs` until the returned function is called. */
  startHeartbeat(intervalMs: number): () => void {
    let timer: NodeJS.Timeout | undefined;
    const beat = (): void => {
      this.report('heartbeat')
        .catch((err: unknown) => this.opts.onNotice(`heartbeat: ${errorMessage(err)}`))
        .finally(() => {
          if (!this.stopped && timer !== undefined) timer = setTimeout(beat, intervalMs);
        });
    };
    timer = setTimeout(beat, 0);
    return () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    };
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.statusIter?.stop?.();
    this.statusIter = undefined;
    this.sub?.unsubscribe();
    this.sub = undefined;
  }
}
