import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Environment } from './environment';
import { closeClusters, createClusters, timedWait } from './clusters';
import type { FoldTracker } from './clusters';
import { PollingNode } from './polling';
import type { PollingScheduler } from './polling';
import { commandCounts, countsDelta, total } from './redis-stats';
import type { CommandCounts } from './redis-stats';
import { summarize } from './stats';
import type { Summary } from './stats';

/**
 * Cost against waiting time: C clusters wait at `start`; the first N-1
 * nodes report, the barrier is held open for `hold` seconds (a slow node),
 * then the last node reports. Redis commands are counted from before the
 * first report to after the last answer, for each design.
 */
export interface WaitCostResult {
  design: 'cluster-sync' | 'polling';
  holdSeconds: number;
  clusters: number;
  /** Last report sent -> each node has the answer, ms. */
  latency: Summary;
  redisCommandsPerBarrier: number;
  redisCommands: CommandCounts;
}

export async function oursWaitCost(env: Environment, tracker: FoldTracker, clusters: number, nodes: number, holdSeconds: number): Promise<WaitCostResult> {
  const cs = await createClusters(env, clusters, nodes);
  const samples: number[] = [];
  const before = await commandCounts(env.redis);
  try {
    const first = cs.map((c) => c.nodes.slice(0, -1).map((n) => timedWait(n, 'wait_start')));
    await Promise.all(cs.map((c) => tracker.folded(c.id, 'wait_start', nodes - 1)));
    await sleep(holdSeconds * 1000);
    await Promise.all(
      cs.map(async (c, i) => {
        const t0 = performance.now();
        const all = await Promise.all([...(first[i] ?? []), timedWait(c.nodes[nodes - 1] as (typeof c.nodes)[number], 'wait_start')]);
        for (const r of all) samples.push(r.at - t0);
      }),
    );
  } finally {
    await closeClusters(cs);
  }
  const delta = countsDelta(before, await commandCounts(env.redis));
  return { design: 'cluster-sync', holdSeconds, clusters, latency: summarize(samples), redisCommandsPerBarrier: total(delta) / clusters, redisCommands: delta };
}

let pollingSeq = 0;

export async function pollingWaitCost(env: Environment, poller: PollingScheduler, clusters: number, nodes: number, holdSeconds: number): Promise<WaitCostResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const cs: { id: string; nodes: PollingNode[] }[] = [];
  for (let c = 0; c < clusters; c++) {
    const id = `poll-${++pollingSeq}`;
    const jobs = Array.from({ length: nodes }, (_, i) => ({ id: `${id}-${i}`, roles: i === 0 ? 'server' : 'client' }));
    await poller.createCluster(id, jobs);
    cs.push({ id, nodes: jobs.map((j) => new PollingNode(poller.url, j.id, agent)) });
  }
  const samples: number[] = [];
  const before = await commandCounts(env.redis);
  try {
    const first = cs.map((c) => c.nodes.slice(0, -1).map((n) => n.wait('wait_start')));
    await Promise.all(cs.map((c) => poller.stateRecorded(c.id, 'start', nodes - 1)));
    await sleep(holdSeconds * 1000);
    await Promise.all(
      cs.map(async (c, i) => {
        const t0 = performance.now();
        const all = await Promise.all([...(first[i] ?? []), (c.nodes[nodes - 1] as PollingNode).wait('wait_start')]);
        for (const r of all) {
          if (r.body !== 'start') throw new Error(`polling baseline answered ${r.body} instead of start`);
          samples.push(r.at - t0);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  const delta = countsDelta(before, await commandCounts(env.redis));
  return { design: 'polling', holdSeconds, clusters, latency: summarize(samples), redisCommandsPerBarrier: total(delta) / clusters, redisCommands: delta };
}
