import { setTimeout as sleep } from 'node:timers/promises';
import type { Environment } from './environment';
import { STEPS } from './clusters';
import { ReportDriver, createDriverClusters } from './report-driver';
import type { DriverCluster } from './report-driver';
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
  /** Reports refused and barriers answered otherwise than `ok` (aborts): none in a sound run. */
  failed: number;
  /** The first few of those, for the log. */
  failures: string[];
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

async function level(env: Environment, rate: number, seconds: number, nodes: number, drainMs: number, idlePerSecond: number): Promise<LevelResult> {
  const arrivalsPerSecond = rate / nodes;
  const expected = Math.ceil(arrivalsPerSecond * seconds);
  // Every report of the level is encoded here, before the clock starts.
  const fresh = await createDriverClusters(env, Math.ceil(expected / STEPS.length) + 4, nodes);
  const ready: DriverCluster[] = [];
  const samples: number[] = [];
  let arrivals = 0;
  let folded = 0;
  let starved = 0;
  let windowEnd = Infinity;
  const driver = new ReportDriver(env, (a) => {
    const at = a.answeredAt as number;
    // Each node of the cluster has the answer once it arrived: one sample per node.
    for (let i = 0; i < nodes; i++) samples.push(at - a.sentAt);
    if (at <= windowEnd) folded += nodes;
    a.cluster.step++;
    if (a.cluster.step < STEPS.length) ready.push(a.cluster);
  });
  await driver.start();
  const natsPid = env.servers.find((s) => s.url.startsWith('nats'))?.pid;
  const cpu0 = {
    workers: env.workers.map((w) => sampleProcess(w.pid)?.cpuSeconds ?? 0),
    redis: await redisCpuSeconds(env.redis),
    nats: natsPid ? sampleProcess(natsPid)?.cpuSeconds : undefined,
    bench: process.cpuUsage(),
  };
  const commands0 = await commandCounts(env.redis);
  const t0 = performance.now();
  windowEnd = t0 + seconds * 1000;
  for (let now = performance.now(); now < windowEnd; now = performance.now()) {
    const due = Math.floor(((now - t0) / 1000) * arrivalsPerSecond) - arrivals;
    for (let i = 0; i < due; i++) {
      arrivals++;
      const c = ready.shift() ?? fresh.pop();
      if (c) driver.send(c);
      else starved++;
    }
    await sleep(2);
  }
  const window = (performance.now() - t0) / 1000;
  const cpu1 = {
    workers: env.workers.map((w) => sampleProcess(w.pid)?.cpuSeconds ?? 0),
    redis: await redisCpuSeconds(env.redis),
    nats: natsPid ? sampleProcess(natsPid)?.cpuSeconds : undefined,
    bench: process.cpuUsage(cpu0.bench),
  };
  await driver.drain(drainMs);
  const unanswered = driver.open.size;
  const commands = total(countsDelta(commands0, await commandCounts(env.redis))) - idlePerSecond * ((performance.now() - t0) / 1000);
  await driver.close();
  return {
    offered: rate,
    sentPerSecond: ((arrivals - starved) * nodes) / window,
    foldedPerSecond: folded / window,
    latency: summarize(samples),
    unanswered,
    failed: driver.failures,
    failures: driver.reasons,
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
        `p50 ${r.latency.p50.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms, ${r.redisCommandsPerReport?.toFixed(1) ?? '-'} Redis commands/report${r.unanswered ? `, ${r.unanswered} unanswered` : ''}${r.failed ? `, ${r.failed} refused or aborted (${r.failures.join('; ')})` : ''}`,
    );
    over = r.latency.p99 > 20 * opts.limitMs ? over + 1 : 0;
    if (over >= 2 || r.unanswered > 0 || r.failed > 0 || r.foldedPerSecond < 0.9 * r.sentPerSecond) break;
  }
  const ok = levels.filter((l) => l.latency.p99 <= opts.limitMs && l.unanswered === 0);
  return {
    workers: opts.workers,
    levels,
    saturationPerSecond: Math.max(0, ...levels.map((l) => l.foldedPerSecond)),
    withinLimitPerSecond: Math.max(0, ...ok.map((l) => l.foldedPerSecond)),
  };
}
