import type { NatsConnection } from 'nats';
import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import type { NodeClientOptions } from '../../src/client/node-client';
import type { ClusterStore } from '../../src/cluster/store';
import type { SubmittedCluster } from '../../src/cluster/submit';
import type { ConnectionConfig } from '../../src/core/config';
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

/** A started NodeClient for every node of `cluster`. */
export async function clientsFor(res: Resources, nc: NatsConnection, config: ConnectionConfig, cluster: SubmittedCluster, options: NodeClientOptions = FAST_CLIENT): Promise<NodeClient[]> {
  const subjects = new Subjects(config.subjectPrefix);
  return Promise.all(
    cluster.jobs.map(async (j) => {
      const c = res.add(new NodeClient(nc, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }, options), (x) => x.close());
      await c.start();
      return c;
    }),
  );
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

export interface EventCount {
  /** Report events in the clusters' streams. */
  reports: number;
  resolutions: number;
}

/** Asserts every cluster finished with every node at `finish`, and exactly 4 report events per node and 3 resolutions per cluster. */
export async function expectAllFinished(store: ClusterStore, clusters: SubmittedCluster[]): Promise<EventCount> {
  let reports = 0;
  let resolutions = 0;
  const problems: string[] = [];
  for (const c of clusters) {
    const view = await store.readCluster(c.cluster);
    if (view.final !== 'finish') problems.push(`${c.cluster}: final ${view.final ?? 'none'}`);
    view.nodes.forEach((n, i) => {
      if (n.state !== 'finish' || n.ip !== ipOf(i)) problems.push(`${c.cluster} ${n.job}: state ${n.state}, ip ${n.ip}`);
    });
    const events = (await store.redis.xrange(store.keys.events(c.cluster), '-', '+')).map(([, f]) => JSON.parse(f[1]!) as { type: string; job?: string; barrier?: string; result?: string });
    const res = events.filter((e) => e.type === 'resolution');
    if (res.map((e) => `${e.barrier}=${e.result}`).join(' ') !== 'start=start ready=ready finish=finish') problems.push(`${c.cluster}: resolutions ${res.map((e) => `${e.barrier}=${e.result}`).join(' ')}`);
    resolutions += res.length;
    for (const j of c.jobs) {
      const n = events.filter((e) => e.type === 'report' && e.job === j.job_id).length;
      reports += n;
      if (n !== 4) problems.push(`${c.cluster} ${j.job_id}: ${n} report events, expected 4`);
    }
  }
  expect(problems.slice(0, 20)).toEqual([]);
  return { reports, resolutions };
}
