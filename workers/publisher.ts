import type { NatsConnection } from 'nats';
import type { Subjects } from '../src/bus/subjects';
import { encodeJson } from '../src/bus/connect';
import type { ClusterStore } from '../src/cluster/store';
import { BARRIERS } from '../src/core/states';
import type { ClusterEvent, FoldOutcome, Resolution } from '../src/fold/outcome';
import type { QueueSet } from '../src/queue/queues';

/** What goes out on `<prefix>.cluster.<cid>.barrier`. */
export interface BarrierMessage extends Resolution {
  v: 1;
  cluster: string;
}

/** Called with every event the workers publish (metrics hook). */
export type EventListener = (event: ClusterEvent) => void;

/**
 * Carries out the side effects of a fold: publishes the resolutions it made
 * (and the answer to a re-sent wait), its events, and schedules the next
 * barrier's deadline. All of it is safe to repeat.
 */
export class Publisher {
  private readonly listeners: EventListener[] = [];
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly store: ClusterStore,
    private readonly queues: QueueSet,
  ) {}

  onEvent(listener: EventListener): void {
    this.listeners.push(listener);
  }

  async apply(cluster: string, outcome: FoldOutcome): Promise<void> {
    if (!outcome.ok) return;
    const sent = new Set<string>();
    const toSend: Resolution[] = [...outcome.resolutions];
    if (outcome.answer) toSend.push(outcome.answer);
    for (const r of toSend) {
      if (sent.has(r.barrier)) continue;
      sent.add(r.barrier);
      const msg: BarrierMessage = { v: 1, cluster, barrier: r.barrier, result: r.result, at: r.at };
      if (r.reason) msg.reason = r.reason;
      if (r.took_ms !== undefined) msg.took_ms = r.took_ms;
      this.nc.publish(this.subjects.barrier(cluster), encodeJson(msg));
    }
    for (const ev of outcome.events) {
      this.nc.publish(this.subjects.event(cluster), encodeJson(ev));
      for (const l of this.listeners) l(ev);
    }
    // The next barrier's clock starts when this one resolves; this one's deadline is moot.
    for (const r of outcome.resolutions) {
      await this.queues.cancelDeadline(cluster, r.barrier);
      if (r.result === 'abort' || r.barrier === 'finish') continue;
      const next = BARRIERS[BARRIERS.indexOf(r.barrier) + 1];
      if (!next) continue;
      const at = r.at + (await this.store.clusterTimeoutMs(cluster));
      await this.store.setDeadline(cluster, next, at);
      await this.queues.scheduleDeadline(cluster, next, at - Date.now());
    }
  }
}
