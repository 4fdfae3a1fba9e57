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
 */
export async function watchClusters(nc: NatsConnection, subjects: Subjects, clusters: string[], options: WatchOptions): Promise<WatchResult> {
  const open = new Set(clusters);
  const result: WatchResult = { finished: [], aborted: [] };
  const subs: Subscription[] = [];
  let done: () => void = () => undefined;
  const over = new Promise<void>((resolve) => (done = resolve));
  const end = (cluster: string, final: string): void => {
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
          if (ev?.cluster === cid) options.onEvent?.(ev);
        },
      }),
      nc.subscribe(subjects.barrier(cid), {
        callback: (err, msg) => {
          const r = err ? undefined : (parse(msg.data) as (Resolution & { cluster?: string }) | undefined);
          if (r?.cluster !== cid) return;
          if (r.result === 'abort') end(cid, 'abort');
          else if (r.barrier === 'finish') end(cid, 'finish');
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
    for (const s of subs) s.unsubscribe();
  }
}
