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
 * Cost against waiting time: C clusters wait at `start`. The first N-1
 * nodes of each report at random moments within `spread` (for polling: one
 * polling interval, so their polls are out of step as real machines' are);
 * the barrier is then held open for `hold` seconds (a slow node), and each
 * cluster's last node reports at a random moment within the next second.
 * Redis commands are counted from before the first report to after the
 * last answer, for each design.
 */
export interface Arrivals {
  /** The first N-1 nodes report within this, ms. */
  spreadMs: number;
  /** Each last node reports within this after the hold, ms. */
  lastSpreadMs: number;
}

const within = (ms: number): Promise<void> => sleep(Math.random() * ms);
export interface WaitCostResult {
  design: 'cluster-sync' | 'polling';
  holdSeconds: number;
  clusters: number;
  /** Last report sent -> each node has the answer, ms. */
  latency: Summary;
  redisCommandsPerBarrier: number;
  redisCommands: CommandCounts;
  /** Length of the counted window, s. */
  seconds: number;
  /** Per barrier, less what the worker processes issue when idle over the same window (their timers). */
  netCommandsPerBarrier?: number;
}

/** Redis commands per second while the workers are idle: their timers (dead-node sweep, stalled checks, blocking waits). */
export async function idleCommandsPerSecond(env: Environment, seconds: number): Promise<number> {
  const before = await commandCounts(env.redis);
  const t = performance.now();
  await sleep(seconds * 1000);
  const delta = countsDelta(before, await commandCounts(env.redis));
  return total(delta) / ((performance.now() - t) / 1000);
}

export async function oursWaitCost(env: Environment, tracker: FoldTracker, clusters: number, nodes: number, holdSeconds: number, arrivals: Arrivals): Promise<WaitCostResult> {
  const cs = await createClusters(env, clusters, nodes);
  const samples: number[] = [];
  const before = await commandCounts(env.redis);
  const t = performance.now();
  try {
    const first = cs.map((c) => c.nodes.slice(0, -1).map((n) => within(arrivals.spreadMs).then(() => timedWait(n, 'wait_start'))));
    await Promise.all(cs.map((c) => tracker.folded(c.id, 'wait_start', nodes - 1, 60_000 + arrivals.spreadMs)));
    await sleep(holdSeconds * 1000);
    await Promise.all(
      cs.map(async (c, i) => {
        await within(arrivals.lastSpreadMs);
        const t0 = performance.now();
        const all = await Promise.all([...(first[i] ?? []), timedWait(c.nodes[nodes - 1] as (typeof c.nodes)[number], 'wait_start')]);
        for (const r of all) samples.push(r.at - t0);
      }),
    );
  } finally {
    await closeClusters(cs);
  }
  const delta = countsDelta(before, await commandCounts(env.redis));
  const seconds = (performance.now() - t) / 1000;
  return { design: 'cluster-sync', holdSeconds, clusters, latency: summarize(samples), redisCommandsPerBarrier: total(delta) / clusters, redisCommands: delta, seconds };
}

let pollingSeq = 0;

export async function pollingWaitCost(
  env: Environment,
  poller: PollingScheduler,
  clusters: number,
  nodes: number,
  holdSeconds: number,
  arrivals: Arrivals,
): Promise<WaitCostResult> {
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
  const t = performance.now();
  try {
    const first = cs.map((c) => c.nodes.slice(0, -1).map((n) => within(arrivals.spreadMs).then(() => n.wait('wait_start'))));
    await Promise.all(cs.map((c) => poller.stateRecorded(c.id, 'start', nodes - 1)));
    await sleep(holdSeconds * 1000);
    await Promise.all(
      cs.map(async (c, i) => {
        await within(arrivals.lastSpreadMs);
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
  const seconds = (performance.now() - t) / 1000;
  const perBarrier = total(delta) / clusters;
  // No worker runs while the baseline is measured: all of it is the baseline's.
  return { design: 'polling', holdSeconds, clusters, latency: summarize(samples), redisCommandsPerBarrier: perBarrier, redisCommands: delta, seconds, netCommandsPerBarrier: perBarrier };
}
