import type { ClusterStore } from '../cluster/store';
import type { ClusterView } from '../cluster/view';
import { NotFoundError } from '../core/errors';
import type { Barrier } from '../core/states';
import type { ClusterEvent } from '../fold/outcome';
import { streamEntryEvent } from './event-feed';

const RANK: Record<string, number> = { '': 0, start: 1, ready: 2, finish: 3 };

/** One row of `status` and of the web page's list. */
export interface ClusterSummary {
  id: string;
  spec: string;
  /** Every role of the cluster, space separated. */
  roles: string;
  nodes: number;
  /** Nodes already at the pending barrier (0 once the cluster is over). */
  waiting: number;
  pending: Barrier | undefined;
  final: 'finish' | 'abort' | undefined;
  /** Creation time, ms. */
  created: number;
  /** When the pending barrier times out, ms. */
  deadline: number | undefined;
  /** The abort reason, once aborted. */
  reason: string | undefined;
}

export function summarize(view: ClusterView): ClusterSummary {
  const pending = view.pending;
  const waiting = pending ? view.nodes.filter((n) => n.state !== 'abort' && (RANK[n.state] ?? 0) >= (RANK[pending] ?? 0)).length : 0;
  const roles = [...new Set(view.nodes.flatMap((n) => n.roles.split(/\s+/).filter(Boolean)))].join(' ');
  return {
    id: view.id,
    spec: view.spec,
    roles,
    nodes: view.nodes.length,
    waiting,
    pending,
    final: view.final,
    created: view.created,
    deadline: pending ? view.barriers.find((b) => b.barrier === pending)?.deadline : undefined,
    reason: view.barriers.find((b) => b.result === 'abort')?.reason,
  };
}

/** Summaries of the open clusters, oldest first (clusters that vanish meanwhile are left out). */
export async function openClusterSummaries(store: ClusterStore, limit = 1000): Promise<ClusterSummary[]> {
  return summariesOf(store, await store.openClusters(limit));
}

/** Summaries of the open clusters and of those with events among the latest `recent` events, newest first. */
export async function recentClusterSummaries(store: ClusterStore, recent = 500, limit = 200): Promise<ClusterSummary[]> {
  const open = await store.openClusters(limit);
  const entries = (await store.redis.xrevrange(store.keys.allEvents, '+', '-', 'COUNT', recent)) as [string, string[]][];
  const ids: string[] = [];
  for (const [id, fields] of entries) {
    const ev = streamEntryEvent(id, fields);
    if (ev && !ids.includes(ev.cluster)) ids.push(ev.cluster);
  }
  for (const id of open.reverse()) if (!ids.includes(id)) ids.push(id);
  const out = await summariesOf(store, ids.slice(0, limit));
  return out.sort((a, b) => b.created - a.created);
}

async function summariesOf(store: ClusterStore, ids: string[]): Promise<ClusterSummary[]> {
  const out: ClusterSummary[] = [];
  for (const id of ids) {
    try {
      out.push(summarize(await store.readCluster(id)));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  return out;
}

/** A cluster's whole event log, oldest first. */
export async function clusterEvents(store: ClusterStore, cluster: string, limit = 10_000): Promise<ClusterEvent[]> {
  const entries = (await store.redis.xrange(store.keys.events(cluster), '-', '+', 'COUNT', limit)) as [string, string[]][];
  const out: ClusterEvent[] = [];
  for (const [id, fields] of entries) {
    const ev = streamEntryEvent(id, fields);
    if (ev) out.push(ev);
  }
  return out;
}
