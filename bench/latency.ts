import { setTimeout as sleep } from 'node:timers/promises';
import type { Environment } from './environment';
import { STEPS, closeClusters, createClusters, timedWait } from './clusters';
import type { FoldTracker, SimCluster } from './clusters';
import { commandCounts, countsDelta, total } from './redis-stats';
import type { CommandCounts } from './redis-stats';
import { sampleProcess } from './proc-stats';
import { summarize } from './stats';
import type { Summary } from './stats';

/**
 * Barrier latency: from the moment the last node's report is sent to the
 * moment each node has the resolution, one sample per node and barrier.
 */

export interface IsolatedResult {
  latency: Summary;
  barriers: number;
}

/**
 * One barrier at a time: the first N-1 nodes report and are folded (seen on
 * the event stream), then the last node reports. Nothing else is in flight,
 * so this is the number to hold against the floor.
 */
export async function isolatedLatency(env: Environment, tracker: FoldTracker, barriers: number, nodes: number): Promise<IsolatedResult> {
  const clusters = await createClusters(env, Math.ceil(barriers / STEPS.length), nodes);
  const samples: number[] = [];
  let done = 0;
  try {
    for (const c of clusters) {
      for (const step of STEPS) {
        if (done++ >= barriers) break;
        const first = c.nodes.slice(0, -1).map((n) => timedWait(n, step));
        await tracker.folded(c.id, step, nodes - 1);
        const t0 = performance.now();
        const all = await Promise.all([...first, timedWait(c.nodes[nodes - 1] as SimCluster['nodes'][number], step)]);
        for (const r of all) samples.push(r.at - t0);
      }
    }
  } finally {
    await closeClusters(clusters);
  }
  return { latency: summarize(samples), barriers: Math.min(done, barriers) };
}

export interface ScaleResult {
  clusters: number;
  nodes: number;
  rounds: number;
  thinkMs: number;
  latency: Summary;
  barriers: number;
  reports: number;
  seconds: number;
  /** Reports sent per second, averaged over the phase. */
  offeredPerSecond: number;
  /** Redis commands per barrier (INFO commandstats, Lua's inner commands included). */
  redisCommandsPerBarrier: number;
  redisCommands: CommandCounts;
  /** CPU seconds each worker process used during the phase. */
  workerCpuSeconds: number[];
  workerRssMb: number[];
}

/**
 * C clusters at once, R rounds (fresh clusters each round), each through
 * start, ready and finish. At every barrier each node reports after a random
 * pause of up to `thinkMs`, as independent machines would.
 */
export async function scaleLatency(env: Environment, opts: { clusters: number; nodes: number; rounds: number; thinkMs: number }): Promise<ScaleResult> {
  const samples: number[] = [];
  let barriers = 0;
  let seconds = 0;
  const cmds: CommandCounts = {};
  const cpu = env.workers.map(() => 0);
  const cpuNow = (): number[] => env.workers.map((w) => sampleProcess(w.pid)?.cpuSeconds ?? 0);
  for (let r = 0; r < opts.rounds; r++) {
    const clusters = await createClusters(env, opts.clusters, opts.nodes);
    const before = await commandCounts(env.redis);
    const cpu0 = cpuNow();
    const t = performance.now();
    try {
      await Promise.all(
        clusters.map(async (c) => {
          for (const step of STEPS) {
            const sent: number[] = [];
            const all = await Promise.all(
              c.nodes.map(async (n) => {
                await sleep(Math.random() * opts.thinkMs);
                sent.push(performance.now());
                return timedWait(n, step);
              }),
            );
            const last = Math.max(...sent);
            for (const x of all) samples.push(x.at - last);
            barriers++;
          }
        }),
      );
    } finally {
      await closeClusters(clusters);
    }
    seconds += (performance.now() - t) / 1000;
    cpuNow().forEach((c, i) => (cpu[i] = (cpu[i] ?? 0) + c - (cpu0[i] ?? 0)));
    for (const [k, v] of Object.entries(countsDelta(before, await commandCounts(env.redis)))) cmds[k] = (cmds[k] ?? 0) + v;
  }
  const reports = barriers * opts.nodes;
  return {
    ...opts,
    latency: summarize(samples),
    barriers,
    reports,
    seconds,
    offeredPerSecond: reports / seconds,
    redisCommandsPerBarrier: total(cmds) / Math.max(1, barriers),
    redisCommands: cmds,
    workerCpuSeconds: cpu,
    workerRssMb: env.workers.map((w) => sampleProcess(w.pid)?.rssMb ?? 0),
  };
}
