import type { ClusterStore } from './store';

/** One named message of a cluster, as `status` shows it (messages.lua's record, in order). */
export interface MessageView {
  msg: string;
  /** When the ID was first sent or waited for, ms. */
  created: number;
  senders: { job: string; at: number; keys: string[] }[];
  waits: { job: string; mode: 'any' | 'all'; role?: string; since: number; released?: number }[];
}

interface MessageRecord {
  created: number;
  order: string[] | Record<string, never>;
  senders: Record<string, { data: Record<string, string>; at: number }>;
  waits: Record<string, { mode: 'any' | 'all'; role?: string; since: number; released?: number }>;
}

/** A cluster's named messages, oldest first (Lua writes an empty list as `{}`). */
export async function readMessages(store: ClusterStore, cid: string): Promise<MessageView[]> {
  const all = await store.redis.hgetall(store.keys.messages(cid));
  return Object.entries(all)
    .map(([msg, raw]) => {
      const r = JSON.parse(raw) as MessageRecord;
      const order = Array.isArray(r.order) ? r.order : [];
      return {
        msg,
        created: r.created,
        senders: order.map((job) => ({ job, at: r.senders[job]?.at ?? 0, keys: Object.keys(r.senders[job]?.data ?? {}).sort() })),
        waits: Object.entries(r.waits ?? {})
          .map(([job, w]) => ({ job, ...w }))
          .sort((a, b) => a.since - b.since),
      };
    })
    .sort((a, b) => a.created - b.created || a.msg.localeCompare(b.msg));
}
