import { Queue } from 'bullmq';
import type { NatsConnection } from 'nats';
import type { NodeClient } from '../../src/client/node-client';
import type { NodeClientOptions } from '../../src/client/node-client';
import type { ClusterStore } from '../../src/cluster/store';
import type { SubmittedCluster } from '../../src/cluster/submit';
import type { ConnectionConfig } from '../../src/core/config';
import { REPORTS_QUEUE } from '../../src/queue/queues';
import { nodeClients } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import type { Resources } from '../helpers/servers';

/**
 * A cluster workload for fault tests: every node of every cluster runs the
 * life of DESIGN §3 through the NodeClient (write_state with its address,
 * then the start, ready and finish barriers), and afterwards the event log
 * of each cluster is counted: exactly one event per state change of each
 * node and one per barrier, or a report was lost or folded twice.
 */

/** Fast retries: a fault test wants to see recovery within seconds. */
export const FAST_CLIENT: NodeClientOptions = { requestTimeoutMs: 1000, maxBackoffMs: 250, giveUpAfterMs: 60_000 };

export function ipOf(nodeIndex: number): string {
  return `10.${(nodeIndex >> 8) & 255}.${nodeIndex & 255}.1`;
}

/** A started NodeClient for every node of `cluster`, with fast retries unless told otherwise. */
export function clientsFor(res: Resources, nc: NatsConnection, config: ConnectionConfig, cluster: SubmittedCluster, options: NodeClientOptions = FAST_CLIENT): Promise<NodeClient[]> {
  return nodeClients(res, config, cluster, options, nc);
}

/** Node i's life: its info, then each barrier. Returns the answers' results, in barrier order. */
export async function life(client: NodeClient, i: number, between?: (barrier: string) => Promise<void>): Promise<string[]> {
  await client.report('write_state', { info: { ip: ipOf(i), node_roles: i === 0 ? 'server' : 'client' } });
  const results: string[] = [];
  for (const kind of ['wait_start', 'wait_ready', 'finished'] as const) {
    results.push((await client.wait(kind)).result);
    await between?.(kind);
  }
  return results;
}

/**
 * Waits until the reports queue is empty: every accepted report folded. A
 * write_state may be folded after the barriers it preceded resolved (the
 * waits carry the same info), so counts are taken only after this.
 */
export async function reportsDrained(store: ClusterStore, timeoutMs = 20_000): Promise<void> {
  const q = new Queue(REPORTS_QUEUE, { connection: store.redis, prefix: store.keys.bullPrefix });
  try {
    await eventually(async () => Object.values(await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).every((v) => v === 0), 'the reports queue to drain', timeoutMs);
  } finally {
    await q.close();
  }
}

export interface EventCount {
  /** Report events that moved a node (wait_start, wait_ready, finished): 3 per node. */
  moves: number;
  /** write_state events: 0 or 1 per node (a wait carries the same info and may be folded first). */
  infos: number;
  resolutions: number;
  /** Folded reports (records in the clusters' reports hashes), when counted. */
  folded?: number;
}

const MOVES = ['wait_start', 'wait_ready', 'finished'];

/**
 * Asserts every cluster finished with every node at `finish` and its
 * address, exactly one event for each of a node's three moves and at most
 * one for its info, and three resolutions per cluster. With `reportsPerNode`,
 * also that each node's reports were all folded, each once (one outcome
 * record per report id in the cluster's reports hash; retries reuse the id).
 */
export async function expectAllFinished(store: ClusterStore, clusters: SubmittedCluster[], reportsPerNode?: number): Promise<EventCount> {
  const count: EventCount = { moves: 0, infos: 0, resolutions: 0 };
  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  if (reportsPerNode !== undefined) {
    count.folded = 0;
    for (const c of clusters) {
      for (const id of await store.redis.hkeys(store.keys.reports(c.cluster))) {
        const job = id.split('.')[0]!;
        outcomes.set(job, (outcomes.get(job) ?? 0) + 1);
      }
    }
  }
  for (const c of clusters) {
    const view = await store.readCluster(c.cluster);
    if (view.final !== 'finish') problems.push(`${c.cluster}: final ${view.final ?? 'none'}`);
    view.nodes.forEach((n, i) => {
      if (n.state !== 'finish' || n.ip !== ipOf(i)) problems.push(`${c.cluster} ${n.job}: state ${n.state}, ip ${n.ip}`);
    });
    const events = (await store.redis.xrange(store.keys.events(c.cluster), '-', '+')).map(
      ([, f]) => JSON.parse(f[1]!) as { type: string; job?: string; report?: string; barrier?: string; result?: string },
    );
    const res = events.filter((e) => e.type === 'resolution');
    if (res.map((e) => `${e.barrier}=${e.result}`).join(' ') !== 'start=start ready=ready finish=finish')
      problems.push(`${c.cluster}: resolutions ${res.map((e) => `${e.barrier}=${e.result}`).join(' ')}`);
    count.resolutions += res.length;
    for (const j of c.jobs) {
      const mine = events.filter((e) => e.type === 'report' && e.job === j.job_id);
      const moves = mine.filter((e) => MOVES.includes(e.report ?? '')).map((e) => e.report);
      const infos = mine.filter((e) => e.report === 'write_state').length;
      count.moves += moves.length;
      count.infos += infos;
      if (moves.join(' ') !== MOVES.join(' ') || infos > 1 || mine.length !== moves.length + infos) problems.push(`${c.cluster} ${j.job_id}: report events ${mine.map((e) => e.report).join(', ')}`);
      if (reportsPerNode !== undefined) {
        const folded = outcomes.get(j.job_id) ?? 0;
        count.folded! += folded;
        if (folded !== reportsPerNode) problems.push(`${c.cluster} ${j.job_id}: ${folded} reports folded, expected ${reportsPerNode}`);
      }
    }
  }
  expect(problems.slice(0, 20)).toEqual([]);
  return count;
}
