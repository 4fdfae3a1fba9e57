import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startRedis } from '../src/services/local-servers';
import type { Environment } from './environment';
import { FoldTracker, closeClusters, createClusters, timedWait } from './clusters';
import { PollingNode, PollingScheduler } from './polling';
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
  /** `cluster-sync+hb`: cluster-sync with its nodes' heartbeats (`heartbeatSeconds`) counted too. */
  design: 'cluster-sync' | 'cluster-sync+hb' | 'polling';
  /** cluster-sync+hb: the nodes' heartbeat interval, s. */
  heartbeatSeconds?: number;
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
  /** cluster-sync: Redis commands/s its idle workers issued, measured just before the hold. */
  idleCommandsPerSecond?: number;
}

/** Redis commands per second while the workers are idle: their timers (dead-node sweep, stalled checks, blocking waits). */
export async function idleCommandsPerSecond(env: Environment, seconds: number): Promise<number> {
  const before = await commandCounts(env.redis);
  const t = performance.now();
  await sleep(seconds * 1000);
  const delta = countsDelta(before, await commandCounts(env.redis));
  return total(delta) / ((performance.now() - t) / 1000);
}

/**
 * cluster-sync's side. With `heartbeatMs` > 0 every node also sends
 * heartbeats at that interval for the whole window, as the node agent does
 * (every 5 s by default): they are part of what waiting costs.
 */
export async function oursWaitCost(env: Environment, tracker: FoldTracker, clusters: number, nodes: number, holdSeconds: number, arrivals: Arrivals, heartbeatMs = 0): Promise<WaitCostResult> {
  const cs = await createClusters(env, clusters, nodes);
  const samples: number[] = [];
  const before = await commandCounts(env.redis);
  const t = performance.now();
  const stops = heartbeatMs > 0 ? cs.flatMap((c) => c.nodes.map((n) => n.startHeartbeat(heartbeatMs))) : [];
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
    for (const stop of stops) stop();
    await closeClusters(cs);
  }
  const delta = countsDelta(before, await commandCounts(env.redis));
  const seconds = (performance.now() - t) / 1000;
  const design = heartbeatMs > 0 ? ('cluster-sync+hb' as const) : ('cluster-sync' as const);
  return {
    design,
    ...(heartbeatMs > 0 ? { heartbeatSeconds: heartbeatMs / 1000 } : {}),
    holdSeconds,
    clusters,
    latency: summarize(samples),
    redisCommandsPerBarrier: total(delta) / clusters,
    redisCommands: delta,
    seconds,
  };
}

let pollingSeq = 0;

export async function pollingWaitCost(redis: Redis, poller: PollingScheduler, clusters: number, nodes: number, holdSeconds: number, arrivals: Arrivals): Promise<WaitCostResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const cs: { id: string; nodes: PollingNode[] }[] = [];
  for (let c = 0; c < clusters; c++) {
    const id = `poll-${++pollingSeq}`;
    const jobs = Array.from({ length: nodes }, (_, i) => ({ id: `${id}-${i}`, roles: i === 0 ? 'server' : 'client' }));
    await poller.createCluster(id, jobs);
    cs.push({ id, nodes: jobs.map((j) => new PollingNode(poller.url, j.id, agent)) });
  }
  const samples: number[] = [];
  const before = await commandCounts(redis);
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
  const delta = countsDelta(before, await commandCounts(redis));
  const seconds = (performance.now() - t) / 1000;
  const perBarrier = total(delta) / clusters;
  // No worker runs while the baseline is measured: all of it is the baseline's.
  return { design: 'polling', holdSeconds, clusters, latency: summarize(samples), redisCommandsPerBarrier: perBarrier, redisCommands: delta, seconds, netCommandsPerBarrier: perBarrier };
}

export interface CostPhaseOptions {
  holds: number[];
  clusters: number;
  nodes: number;
  /** Worker processes per cluster-sync hold. */
  workers: number;
  pollIntervalSeconds: number;
  /** cluster-sync's nodes send heartbeats at this interval, ms (0: none). */
  heartbeatMs: number;
  arrivals: Arrivals;
  /** How long idle workers are watched before each cluster-sync hold, s. */
  idleSeconds: number;
  log: (line: string) => void;
}

export interface CostPhaseResult {
  /** cluster-sync rows (holds in order), then cluster-sync+hb rows, then polling rows. */
  rows: WaitCostResult[];
  /** Every server and worker process the phase started, all stopped again. */
  pids: { servers: number[]; workers: number[] };
  /** True when every hold of both designs ran at once, each on its own Redis. */
  concurrent: boolean;
}

/**
 * Redis commands per barrier against waiting time, for cluster-sync and for
 * the polling baseline. Every hold of both designs runs at the same time, each
 * on a Redis server of its own (INFO commandstats is per server), so the phase
 * lasts about the longest hold, not their sum; each cluster-sync hold has its
 * own worker processes and counts its own idle rate, each polling hold its own
 * scheduler and no worker. Given one Redis (`--redis-url`), the holds run one
 * after another on `env`, as before, with the workers stopped for polling.
 */
export async function costPhase(env: Environment, opts: CostPhaseOptions): Promise<CostPhaseResult> {
  const pids = { servers: [] as number[], workers: [] as number[] };
  const probe = await env.sibling(1);
  if (!probe) return { rows: await costInSequence(env, opts), pids, concurrent: false };
  if (opts.holds.length === 0) {
    await probe.close();
    return { rows: [], pids, concurrent: true };
  }
  const ours = async (hold: number, heartbeatMs: number, first?: Environment): Promise<WaitCostResult> => {
    const e = first ?? (await env.sibling(1));
    if (!e) throw new Error('bench: no Redis of its own for a cost hold');
    const tracker = new FoldTracker(e);
    try {
      pids.servers.push(...e.pids.servers);
      await e.setWorkers(opts.workers);
      pids.workers.push(...e.pids.workers);
      tracker.start();
      const idle = await idleCommandsPerSecond(e, opts.idleSeconds);
      opts.log(`bench: cost with the barrier held ${hold} s (cluster-sync${heartbeatMs > 0 ? `, heartbeats every ${heartbeatMs / 1000} s` : ''}, own Redis and worker)`);
      const w = await oursWaitCost(e, tracker, opts.clusters, opts.nodes, hold, opts.arrivals, heartbeatMs);
      return { ...w, idleCommandsPerSecond: idle, netCommandsPerBarrier: w.redisCommandsPerBarrier - (idle * w.seconds) / w.clusters };
    } finally {
      await tracker.stop();
      await e.close();
    }
  };
  const polling = async (hold: number): Promise<WaitCostResult> => {
    const server = await startRedis();
    pids.servers.push(server.pid);
    const redis = new Redis(server.url, { maxRetriesPerRequest: null, connectionName: 'cs-bench-cost' });
    const poller = new PollingScheduler(server.url, env.config.keyPrefix, opts.pollIntervalSeconds * 1000);
    try {
      await poller.start();
      opts.log(`bench: cost with the barrier held ${hold} s (polling every ${opts.pollIntervalSeconds} s, own Redis)`);
      return await pollingWaitCost(redis, poller, opts.clusters, opts.nodes, hold, opts.arrivals);
    } finally {
      await poller.close();
      await redis.quit().catch(() => redis.disconnect());
      await server.dispose();
    }
  };
  const rows = await Promise.all([
    ...opts.holds.map((h, i) => ours(h, 0, i === 0 ? probe : undefined)),
    ...(opts.heartbeatMs > 0 ? opts.holds.map((h) => ours(h, opts.heartbeatMs)) : []),
    ...opts.holds.map((h) => polling(h)),
  ]);
  return { rows, pids, concurrent: true };
}

/** The holds one after another on one Redis: cluster-sync with `env`'s workers, then polling with them stopped. */
async function costInSequence(env: Environment, opts: CostPhaseOptions): Promise<WaitCostResult[]> {
  const rows: WaitCostResult[] = [];
  const tracker = new FoldTracker(env);
  tracker.start();
  try {
    await env.setWorkers(opts.workers);
    const idle = await idleCommandsPerSecond(env, opts.idleSeconds);
    for (const hb of opts.heartbeatMs > 0 ? [0, opts.heartbeatMs] : [0]) {
      for (const hold of opts.holds) {
        opts.log(`bench: cost with the barrier held ${hold} s (cluster-sync${hb > 0 ? `, heartbeats every ${hb / 1000} s` : ''})`);
        const w = await oursWaitCost(env, tracker, opts.clusters, opts.nodes, hold, opts.arrivals, hb);
        rows.push({ ...w, idleCommandsPerSecond: idle, netCommandsPerBarrier: w.redisCommandsPerBarrier - (idle * w.seconds) / w.clusters });
      }
    }
  } finally {
    await tracker.stop();
  }
  // The baseline runs with the workers stopped, so Redis counts only its commands.
  const workers = env.workers.length;
  await env.setWorkers(0);
  const poller = new PollingScheduler(env.config.redisUrl, env.config.keyPrefix, opts.pollIntervalSeconds * 1000);
  await poller.start();
  try {
    for (const hold of opts.holds) {
      opts.log(`bench: cost with the barrier held ${hold} s (polling every ${opts.pollIntervalSeconds} s)`);
      rows.push(await pollingWaitCost(env.redis, poller, opts.clusters, opts.nodes, hold, opts.arrivals));
    }
  } finally {
    await poller.close();
    await env.setWorkers(workers);
  }
  return rows;
}
