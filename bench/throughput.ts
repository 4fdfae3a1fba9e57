import { setTimeout as sleep } from 'node:timers/promises';
import type { Environment } from './environment';
import { STEPS, closeClusters, createClusters, timedWait } from './clusters';
import type { SimCluster } from './clusters';
import { sampleProcess } from './proc-stats';
import { commandCounts, countsDelta, redisCpuSeconds, total } from './redis-stats';
import { summarize } from './stats';
import type { Summary } from './stats';

/**
 * Throughput: an open-loop load of barrier arrivals (all N nodes of a
 * cluster report at once) at a fixed rate per level, raised level by level
 * until p99 latency passes the limit. Reports folded per second = reports of
 * the barriers resolved inside the level's window, over its length.
 */

export interface LevelResult {
  /** Target offered load, reports/s. */
  offered: number;
  /** Reports actually sent per second. */
  sentPerSecond: number;
  foldedPerSecond: number;
  latency: Summary;
  /** Barriers still unanswered after the drain period. */
  unanswered: number;
  /**
   * Redis commands (INFO commandstats, commands inside scripts included) per report sent,
   * from the level's start until its last answer, net of the idle workers' commands.
   */
  redisCommandsPerReport?: number;
  /** CPU used per second of window (1 = one core): each worker, Redis, NATS (when local), the bench itself. */
  cpu: { workers: number[]; redis: number; nats?: number; bench: number };
}

export interface RampResult {
  workers: number;
  levels: LevelResult[];
  /** Highest reports folded per second seen. */
  saturationPerSecond: number;
  /** Highest reports folded per second at a level whose p99 stayed within the limit. */
  withinLimitPerSecond: number;
}

type Cluster = SimCluster & { step: number };

async function level(env: Environment, rate: number, seconds: number, nodes: number, drainMs: number, idlePerSecond: number): Promise<LevelResult> {
  const arrivalsPerSecond = rate / nodes;
  const expected = Math.ceil(arrivalsPerSecond * seconds);
  const fresh: Cluster[] = (await createClusters(env, Math.ceil(expected / STEPS.length) + 4, nodes)).map((c) => ({ ...c, step: 0 }));
  const all = [...fresh];
  const ready: Cluster[] = [];
  const samples: number[] = [];
  const pending = new Set<Promise<void>>();
  let arrivals = 0;
  let folded = 0;
  let starved = 0;
  const natsPid = env.servers.find((s) => s.url.startsWith('nats'))?.pid;
  const cpu0 = { workers: env.workers.map((w) => sampleProcess(w.pid)?.cpuSeconds ?? 0), redis: await redisCpuSeconds(env.redis), nats: natsPid ? sampleProcess(natsPid)?.cpuSeconds : undefined, bench: process.cpuUsage() };
  const commands0 = await commandCounts(env.redis);
  const t0 = performance.now();
  const windowEnd = t0 + seconds * 1000;
  const launch = (c: Cluster): void => {
    const step = STEPS[c.step] as (typeof STEPS)[number];
    const t = performance.now();
    const p = Promise.all(c.nodes.map((n) => timedWait(n, step)))
      .then((rs) => {
        let lastAt = 0;
        for (const r of rs) {
          samples.push(r.at - t);
          lastAt = Math.max(lastAt, r.at);
        }
        if (lastAt <= windowEnd) folded += nodes;
        c.step++;
        if (c.step < STEPS.length) ready.push(c);
      })
      .catch(() => undefined)
      .finally(() => pending.delete(p));
    pending.add(p);
  };
  for (let now = performance.now(); now < windowEnd; now = performance.now()) {
    const due = Math.floor(((now - t0) / 1000) * arrivalsPerSecond) - arrivals;
    for (let i = 0; i < due; i++) {
      arrivals++;
      const c = ready.shift() ?? fresh.pop();
      if (c) launch(c);
      else starved++;
    }
    await sleep(2);
  }
  const window = (performance.now() - t0) / 1000;
  const cpu1 = { workers: env.workers.map((w) => sampleProcess(w.pid)?.cpuSeconds ?? 0), redis: await redisCpuSeconds(env.redis), nats: natsPid ? sampleProcess(natsPid)?.cpuSeconds : undefined, bench: process.cpuUsage(cpu0.bench) };
  const drained = Promise.all([...pending]);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, drainMs)))]);
  clearTimeout(timer);
  const unanswered = pending.size;
  const commands = total(countsDelta(commands0, await commandCounts(env.redis))) - idlePerSecond * ((performance.now() - t0) / 1000);
  await closeClusters(all);
  return {
    offered: rate,
    sentPerSecond: ((arrivals - starved) * nodes) / window,
    foldedPerSecond: folded / window,
    latency: summarize(samples),
    unanswered,
    redisCommandsPerReport: arrivals > starved ? commands / ((arrivals - starved) * nodes) : undefined,
    cpu: {
      workers: cpu1.workers.map((c, i) => (c - (cpu0.workers[i] ?? 0)) / window),
      redis: (cpu1.redis - cpu0.redis) / window,
      nats: cpu1.nats !== undefined && cpu0.nats !== undefined ? (cpu1.nats - cpu0.nats) / window : undefined,
      bench: (cpu1.bench.user + cpu1.bench.system) / 1e6 / window,
    },
  };
}

/**
 * Runs the levels in order with `workers` worker processes, until folding
 * falls behind (under 90 % of what was sent, or barriers left unanswered) or
 * two levels in a row have a p99 over 20 × the limit. Saturation is the most
 * it folded; the limit (p99) marks the most it folded while still quick. On
 * a quiet machine the two are close; on a shared one, other processes'
 * stalls push p99 over the limit long before the workers are saturated, so
 * the ramp goes on to find the saturation all the same.
 */
export async function ramp(
  env: Environment,
  opts: { workers: number; levels: number[]; seconds: number; nodes: number; limitMs: number; idlePerSecond: number; log: (line: string) => void },
): Promise<RampResult> {
  await env.setWorkers(opts.workers);
  const levels: LevelResult[] = [];
  let over = 0;
  for (const rate of opts.levels) {
    const r = await level(env, rate, opts.seconds, opts.nodes, Math.max(10_000, opts.seconds * 2000), opts.idlePerSecond);
    levels.push(r);
    opts.log(
      `  ${opts.workers} worker(s), offered ${rate}/s: sent ${r.sentPerSecond.toFixed(0)}/s, folded ${r.foldedPerSecond.toFixed(0)}/s, ` +
        `p50 ${r.latency.p50.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms, ${r.redisCommandsPerReport?.toFixed(1) ?? '-'} Redis commands/report${r.unanswered ? `, ${r.unanswered} unanswered` : ''}`,
    );
    over = r.latency.p99 > 20 * opts.limitMs ? over + 1 : 0;
    if (over >= 2 || r.unanswered > 0 || r.foldedPerSecond < 0.9 * r.sentPerSecond) break;
  }
  const ok = levels.filter((l) => l.latency.p99 <= opts.limitMs && l.unanswered === 0);
  return {
    workers: opts.workers,
    levels,
    saturationPerSecond: Math.max(0, ...levels.map((l) => l.foldedPerSecond)),
    withinLimitPerSecond: Math.max(0, ...ok.map((l) => l.foldedPerSecond)),
  };
}
