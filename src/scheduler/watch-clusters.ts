import type { NatsConnection, Subscription } from 'nats';
import { decodeText } from '../bus/connect';
import type { Subjects } from '../bus/subjects';
import type { ClusterEvent, Resolution } from '../fold/outcome';

export interface WatchResult {
  finished: string[];
  aborted: string[];
}

export interface WatchOptions {
  /** Reads a cluster's final result now (`finish`, `abort` or null), to catch one that ended before the subscriptions. */
  finalOf: (cluster: string) => Promise<string | null>;
  /** Told every event of the watched clusters. */
  onEvent?: (event: ClusterEvent) => void;
}

/**
 * Follows clusters on NATS (their event and barrier subjects) until every one
 * is over: its `finish` barrier resolved, or any barrier resolved `abort`.
 * Subscribes first, then asks `finalOf`, so an end is never missed.
 *
 * The end is taken from the resolution's event, so the watcher has printed it
 * before it returns: the workers publish a barrier's answer before its event
 * (nodes first), and ending on the answer dropped the last event now and then.
 * The answer still ends a cluster whose event never comes, after
 * {@link EVENT_GRACE_MS}.
 */
/** How long after a barrier's final answer its event may still come, ms. */
export const EVENT_GRACE_MS = 2000;

export async function watchClusters(nc: NatsConnection, subjects: Subjects, clusters: string[], options: WatchOptions): Promise<WatchResult> {
  const open = new Set(clusters);
  const result: WatchResult = { finished: [], aborted: [] };
  const subs: Subscription[] = [];
  let done: () => void = () => undefined;
  const over = new Promise<void>((resolve) => (done = resolve));
  const grace = new Map<string, NodeJS.Timeout>();
  const end = (cluster: string, final: string): void => {
    clearTimeout(grace.get(cluster));
    grace.delete(cluster);
    if (!open.delete(cluster)) return;
    (final === 'abort' ? result.aborted : result.finished).push(cluster);
    if (open.size === 0) done();
  };
  const parse = (data: Uint8Array): unknown => {
    try {
      return JSON.parse(decodeText(data));
    } catch {
      return undefined;
    }
  };
  for (const cid of clusters) {
    subs.push(
      nc.subscribe(subjects.event(cid), {
        callback: (err, msg) => {
          const ev = err ? undefined : (parse(msg.data) as ClusterEvent | undefined);
          if (ev?.cluster !== cid) return;
          options.onEvent?.(ev);
          if (ev.type === 'resolution' && (ev.result === 'abort' || ev.barrier === 'finish')) end(cid, ev.result === 'abort' ? 'abort' : 'finish');
        },
      }),
      nc.subscribe(subjects.barrier(cid), {
        callback: (err, msg) => {
          const r = err ? undefined : (parse(msg.data) as (Resolution & { cluster?: string }) | undefined);
          if (r?.cluster !== cid) return;
          const final = r.result === 'abort' ? 'abort' : r.barrier === 'finish' ? 'finish' : undefined;
          if (final && open.has(cid) && !grace.has(cid))
            grace.set(
              cid,
              setTimeout(() => end(cid, final), EVENT_GRACE_MS),
            );
        },
      }),
    );
  }
  try {
    await nc.flush();
    for (const cid of clusters) {
      const final = await options.finalOf(cid);
      if (final) end(cid, final);
    }
    if (open.size > 0) await over;
    return result;
  } finally {
    for (const t of grace.values()) clearTimeout(t);
    for (const s of subs) s.unsubscribe();
  }
}
