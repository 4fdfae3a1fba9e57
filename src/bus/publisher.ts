import type { NatsConnection } from 'nats';
import type { Subjects } from './subjects';
import { encodeJson } from './connect';
import type { ClusterEvent, FoldOutcome, Resolution } from '../fold/outcome';

/** What goes out on `<prefix>.cluster.<cid>.barrier`. */
export interface BarrierMessage extends Resolution {
  v: 1;
  cluster: string;
}

/** Called with every event the workers publish (metrics hook). */
export type EventListener = (event: ClusterEvent) => void;

/**
 * Carries out the side effects of folds: publishes the resolutions they made
 * (and the answer to a re-sent wait) and their events, on NATS only. The
 * next barrier's deadline is written by the fold itself. All of it is safe
 * to repeat.
 */
export class Publisher {
  private readonly listeners: EventListener[] = [];
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
  ) {}

  onEvent(listener: EventListener): void {
    this.listeners.push(listener);
  }

  /**
   * Publishes what the folds of one cluster decided (one report's, or a whole
   * batch's): each barrier's answer once, however many of the reports
   * resolved it or waited at it, then every event once.
   */
  apply(cluster: string, outcomes: FoldOutcome | readonly FoldOutcome[]): void {
    const list = Array.isArray(outcomes) ? (outcomes as readonly FoldOutcome[]) : [outcomes as FoldOutcome];
    const answers = new Map<string, Resolution>();
    const events = new Map<string, ClusterEvent>();
    for (const o of list) {
      if (!o.ok) continue;
      for (const r of o.resolutions) if (!answers.has(r.barrier)) answers.set(r.barrier, r);
      if (o.answer && !answers.has(o.answer.barrier)) answers.set(o.answer.barrier, o.answer);
      for (const ev of o.events) events.set(ev.id, ev);
    }
    for (const r of answers.values()) {
      const msg: BarrierMessage = { v: 1, cluster, barrier: r.barrier, result: r.result, at: r.at };
      if (r.reason) msg.reason = r.reason;
      if (r.took_ms !== undefined) msg.took_ms = r.took_ms;
      this.nc.publish(this.subjects.barrier(cluster), encodeJson(msg));
    }
    // Named messages' states, one per report (each sender hears its own report's): waits are pushed, never polled.
    for (const o of list) if (o.ok && o.message) this.nc.publish(this.subjects.message(cluster), encodeJson(o.message));
    for (const ev of events.values()) {
      this.nc.publish(this.subjects.event(cluster), encodeJson(ev));
      for (const l of this.listeners) l(ev);
    }
  }
}
