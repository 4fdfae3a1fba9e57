import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { startHaSet } from '../src/services/ha-servers';
import { FoldTracker } from './clusters';
import { Environment } from './environment';
import { measureFailover } from './failover';
import type { FailoverSample } from './failover';
import { isolatedLatency } from './latency';
import { ramp } from './throughput';
import { idleCommandsPerSecond } from './wait-cost';
import { summarize } from './stats';
import type { Summary } from './stats';

/**
 * `node dist/bench/ha.js [--failovers N] [--load C] [--quick]`: single Redis
 * against Redis behind Sentinel (a primary, 2 replicas, 3 sentinels, every
 * "accepted" after `WAIT 1`), side by side in one run with the same worker
 * count: barrier latency one at a time (p50/p99), the throughput ramp
 * (folds/s at saturation, Redis commands per report at that level); then
 * the failover (bench/failover.ts): the primary SIGKILLed N times while C
 * clusters of 4 nodes report, each time the time from its death to
 * +switch-master and to the first barrier answered again, and the accepted
 * reports lost.
 */

const ROOT = path.resolve(__dirname, '../..');
/** The machine's 1, 5 and 15 minute load averages, rounded: the machine may be shared. */
const loadAverage = (): number[] => loadavg().map((l) => Math.round(l * 10) / 10);
const log = (line: string): void => void process.stderr.write(`${line}\n`);

interface ModeResult {
  mode: string;
  barrier: Summary;
  saturationPerSecond: number;
  commandsPerReport: number | undefined;
  p99AtSaturationMs: number;
}

async function measure(mode: string, env: Environment, o: { barriers: number; levels: number[]; seconds: number; workers: number }): Promise<ModeResult> {
  await env.setWorkers(o.workers);
  const tracker = new FoldTracker(env);
  tracker.start();
  log(`${mode}: ${o.barriers} barriers one at a time`);
  const isolated = await isolatedLatency(env, tracker, o.barriers, 4);
  await tracker.stop();
  const idle = await idleCommandsPerSecond(env, 2);
  log(`${mode}: throughput ramp`);
  const r = await ramp(env, { workers: o.workers, levels: o.levels, seconds: o.seconds, nodes: 4, limitMs: 100, idlePerSecond: idle, log });
  const top = r.levels.reduce((a, b) => (b.foldedPerSecond > a.foldedPerSecond ? b : a));
  return { mode, barrier: isolated.latency, saturationPerSecond: r.saturationPerSecond, commandsPerReport: top.redisCommandsPerReport, p99AtSaturationMs: top.latency.p99 };
}

async function main(): Promise<void> {
  const o = new Command('bench-ha')
    .option('--failovers <n>', 'primaries killed', (v) => Number(v), 12)
    .option('--load <clusters>', '4-node clusters living their life through each failover', (v) => Number(v), 10)
    .option('--skip-throughput', 'only the failovers, not the side-by-side measurement')
    .option('--workers <n>', 'worker processes in both modes', (v) => Number(v), 1)
    .option('--quick', 'short levels and fewer barriers')
    .option('--out <dir>', 'where the JSON goes', path.join(ROOT, 'bench/results'))
    .parse()
    .opts<{ failovers: number; load: number; skipThroughput?: boolean; workers: number; quick?: boolean; out: string }>();
  const shape = { barriers: o.quick ? 60 : 300, levels: o.quick ? [500, 1000, 2000, 4000] : [1000, 2000, 4000, 8000, 12000, 16000, 24000], seconds: o.quick ? 2 : 4, workers: o.workers };
  const envOpts = { nodeConnections: 4, workerNodeArgs: [], workerArgs: [], workerCwd: o.out };
  mkdirSync(o.out, { recursive: true });
  const modes: ModeResult[] = [];
  const load = { start: loadAverage(), end: [0, 0, 0] };
  if (!o.skipThroughput) {
    const single = await Environment.start(envOpts);
    try {
      modes.push(await measure('single Redis', single, shape));
    } finally {
      await single.close();
    }
  }
  const set = await startHaSet({ downAfterMs: 1000, failoverTimeoutMs: 5000 });
  const failovers: FailoverSample[] = [];
  try {
    const { redisSentinels, redisMaster, natsUrl } = set.connection();
    const ha = await Environment.start({ ...envOpts, natsUrl, sentinels: { redisSentinels, redisMaster } });
    try {
      if (!o.skipThroughput) modes.push(await measure('Sentinel, WAIT 1', ha, shape));
      await ha.setWorkers(o.workers);
      for (let i = 0; i < o.failovers; i++) {
        const f = await measureFailover(set, ha, o.load);
        log(
          `failover ${i + 1}/${o.failovers}: +switch-master after ${f.switchMs.toFixed(0)} ms, first barrier answered after ${f.barrierMs.toFixed(0)} ms; ${f.accepted} reports accepted, ${f.lost} lost, ${f.unanswered} nodes unanswered, ${f.doubled} folded twice`,
        );
        failovers.push(f);
      }
    } finally {
      await ha.close();
    }
  } finally {
    await set.stop();
  }
  load.end = loadAverage();
  const sum = (k: 'accepted' | 'lost' | 'unanswered' | 'doubled'): number => failovers.reduce((a, f) => a + f[k], 0);
  const fo = {
    load: o.load,
    switchMs: summarize(failovers.map((f) => f.switchMs)),
    barrierMs: summarize(failovers.map((f) => f.barrierMs)),
    accepted: sum('accepted'),
    lost: sum('lost'),
    unanswered: sum('unanswered'),
    doubled: sum('doubled'),
    runs: failovers,
  };
  const file = path.join(o.out, `ha-${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(
    file,
    JSON.stringify({ command: ['node', path.relative(ROOT, process.argv[1] ?? ''), ...process.argv.slice(2)].join(' '), loadAverage: load, shape, modes, failover: fo }, null, 2) + '\n',
  );
  const row = (m: ModeResult): string => `| ${m.mode} | ${m.saturationPerSecond.toFixed(0)} | ${m.barrier.p50.toFixed(2)} | ${m.barrier.p99.toFixed(2)} | ${m.commandsPerReport?.toFixed(1) ?? '-'} |`;
  process.stdout.write(
    [
      '| Redis | folds/s at saturation | barrier p50 ms | barrier p99 ms | Redis commands/report |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...modes.map(row),
      '',
      `load average (1, 5, 15 min) at the start ${load.start.join(', ')}, at the end ${load.end.join(', ')}`,
      '',
      `| failover | primary death -> +switch-master ms | -> first barrier answered ms | load's reports accepted | lost | nodes unanswered | folded twice |`,
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...failovers.map((f, i) => `| ${i + 1} | ${f.switchMs.toFixed(0)} | ${f.barrierMs.toFixed(0)} | ${f.accepted} | ${f.lost} | ${f.unanswered} | ${f.doubled} |`),
      `| median | ${fo.switchMs.p50.toFixed(0)} | ${fo.barrierMs.p50.toFixed(0)} | total ${fo.accepted} | ${fo.lost} | ${fo.unanswered} | ${fo.doubled} |`,
      '',
      `results: ${file}`,
      '',
    ].join('\n'),
  );
  // Nothing accepted may be lost, and every node answered: else the run failed, whatever its times.
  if (fo.lost > 0 || fo.unanswered > 0 || fo.doubled > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-ha: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
