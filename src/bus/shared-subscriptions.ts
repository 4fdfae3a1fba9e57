import type { NatsConnection, Status, Subscription } from 'nats';
import { decodeText } from './connect';

/*
 * Design note: one NATS subscription per subject per process, shared.
 *
 * A process that holds many waits on one subject (the scheduler's legacy long
 * polls: thousands of lkp clients at one barrier or one message ID) used to
 * subscribe once per wait, so every message on the subject was delivered
 * once per wait: N waits whose own reports each publish on the subject cost
 * N²/2 deliveries. Here the first user of a subject subscribes (and flushes,
 * so the server has the subscription before the user sends anything that
 * may be answered on it), later users share that subscription, and the last
 * one to leave unsubscribes. Each subject has one router, made by its first
 * user, that gets every message once, parsed once, and hands it to the
 * waits it concerns (by key, not by asking each wait), so a message costs
 * the waits it releases, not the waits held.
 */

/** What receives a shared subject's messages. */
export interface Router {
  /** One message of the subject, JSON-parsed (messages that are not JSON are dropped). */
  deliver(body: unknown): void;
  /** After the connection reconnected: messages may have been missed; send again what waits on an answer. */
  reconnected?(): void;
  /** Requests held waiting on the subject now. */
  readonly waiting?: number;
}

export interface Lease<R extends Router> {
  readonly router: R;
  /** Gives the subscription back; the last lease of a subject unsubscribes. Idempotent. */
  release(): void;
}

interface Entry {
  sub: Subscription;
  router: Router;
  users: number;
  /** Resolves once the server has the subscription. */
  ready: Promise<void>;
}

export class SharedSubscriptions {
  private readonly entries = new Map<string, Entry>();
  private statusIter: (AsyncIterable<Status> & { stop?: () => void }) | undefined;
  /** Messages delivered to this process's shared subscriptions, all subjects (a counter for metrics and the bench). */
  deliveries = 0;

  constructor(private readonly nc: NatsConnection) {}

  /** Subjects subscribed now. */
  get subscriptions(): number {
    return this.entries.size;
  }

  /** Requests held waiting on every shared subject now. */
  get waiting(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.router.waiting ?? 0;
    return n;
  }

  /** The router of `subject` while someone holds a share of it (no share is taken); undefined when nobody does. */
  peek<R extends Router>(subject: string): R | undefined {
    return this.entries.get(subject)?.router as R | undefined;
  }

  /**
   * Takes a share of `subject`, subscribing first if nobody holds it (the
   * router is then `make()`); resolves once the server has the subscription.
   */
  async acquire<R extends Router>(subject: string, make: () => R): Promise<Lease<R>> {
    this.watchReconnects();
    let entry = this.entries.get(subject);
    if (!entry) {
      const router = make();
      const sub = this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return;
          let body: unknown;
          try {
            body = JSON.parse(decodeText(msg.data));
          } catch {
            return;
          }
          this.deliveries++;
          router.deliver(body);
        },
      });
      entry = { sub, router, users: 0, ready: this.nc.flush() };
      this.entries.set(subject, entry);
    }
    const held = entry;
    held.users++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      held.users--;
      if (held.users === 0 && this.entries.get(subject) === held) {
        this.entries.delete(subject);
        held.sub.unsubscribe();
      }
    };
    try {
      await held.ready;
    } catch (err) {
      release();
      throw err;
    }
    return { router: held.router as R, release };
  }

  private watchReconnects(): void {
    if (this.statusIter) return;
    const iter = this.nc.status() as AsyncIterable<Status> & { stop?: () => void };
    this.statusIter = iter;
    void (async () => {
      for await (const s of iter) {
        if (s.type !== 'reconnect') continue;
        for (const e of [...this.entries.values()]) e.router.reconnected?.();
      }
    })();
  }

  /** Stops watching the connection's status; subscriptions end with their leases (or the connection). */
  close(): void {
    this.statusIter?.stop?.();
    this.statusIter = undefined;
  }
}
