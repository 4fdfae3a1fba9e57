import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { NodeClient } from '../src/client/node-client';
import { startHaSet, watchSwitchMaster } from '../src/services/ha-servers';
import type { HaSet } from '../src/services/ha-servers';
import { FoldTracker, submitBenchClusters } from './clusters';
import { Environment } from './environment';
import { isolatedLatency } from './latency';
import { ramp } from './throughput';
import { idleCommandsPerSecond } from './wait-cost';
import { summarize } from './stats';
import type { Summary } from './stats';

/**
 * `node dist/bench/ha.js [--failovers N] [--quick]`: single Redis against
 * Redis behind Sentinel (a primary, 2 replicas, 3 sentinels, every
 * "accepted" after `WAIT 1`), side by side in one run with the same worker
 * count: barrier latency one at a time (p50/p99), the throughput ramp
 * (folds/s at saturation, Redis commands per report at that level); then
 * the failover: the primary SIGKILLed N times, each time the time from its
 * death to the first barrier answered again, and to +switch-master.
 */

const ROOT = path.resolve(__dirname, '../..');
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

interface Failover {
  /** Primary's death to the sentinels' +switch-master, ms. */
  switchMs: number;
  /** Primary's death to the first barrier answered again, ms. */
  barrierMs: number;
}

/**
 * One failover: a 2-node cluster is ready; the primary is SIGKILLed and at
 * once both nodes wait at the start barrier; the time is that of the
 * answer. The dead primary is then started again and rejoins as a replica.
 */
async function failover(set: HaSet, env: Environment): Promise<Failover> {
  const [cluster] = await submitBenchClusters(env, 1, 2);
  const nodes = cluster!.jobs.map(
    (j) => new NodeClient(env.nodeConnection(), env.subjects, { cluster: j.cluster, job: j.job_id, token: j.token }, { requestTimeoutMs: 2000, maxBackoffMs: 50, giveUpAfterMs: 120_000 }),
  );
  await Promise.all(nodes.map((n) => n.start()));
  const old = await set.primary();
  const watch = await watchSwitchMaster(set.sentinels[0]!.port, set.masterName);
  try {
    const t0 = performance.now();
    process.kill(old.pid, 'SIGKILL');
    const switched = watch.next.then(() => performance.now() - t0);
    const answers = await Promise.all(nodes.map((n) => n.wait('wait_start')));
    const barrierMs = performance.now() - t0;
    if (answers.some((a) => a.result !== 'start')) throw new Error(`barrier answered ${answers.map((a) => a.result).join(', ')}`);
    const switchMs = await switched;
    return { switchMs, barrierMs };
  } finally {
    watch.close();
    await Promise.all(nodes.map((n) => n.close()));
    await old.restart();
    await set.ready();
  }
}

async function main(): Promise<void> {
  const o = new Command('bench-ha')
    .option('--failovers <n>', 'primaries killed', (v) => Number(v), 10)
    .option('--workers <n>', 'worker processes in both modes', (v) => Number(v), 1)
    .option('--quick', 'short levels and fewer barriers')
    .option('--out <dir>', 'where the JSON goes', path.join(ROOT, 'bench/results'))
    .parse()
    .opts<{ failovers: number; workers: number; quick?: boolean; out: string }>();
  const shape = { barriers: o.quick ? 60 : 300, levels: o.quick ? [500, 1000, 2000, 4000] : [1000, 2000, 4000, 8000, 12000, 16000, 24000], seconds: o.quick ? 2 : 4, workers: o.workers };
  const envOpts = { nodeConnections: 4, workerNodeArgs: [], workerArgs: [], workerCwd: o.out };
  mkdirSync(o.out, { recursive: true });
  const modes: ModeResult[] = [];
  const single = await Environment.start(envOpts);
  try {
    modes.push(await measure('single Redis', single, shape));
  } finally {
    await single.close();
  }
  const set = await startHaSet({ downAfterMs: 1000, failoverTimeoutMs: 5000 });
  const failovers: Failover[] = [];
  try {
    const { redisSentinels, redisMaster, natsUrl } = set.connection();
    const ha = await Environment.start({ ...envOpts, natsUrl, sentinels: { redisSentinels, redisMaster } });
    try {
      modes.push(await measure('Sentinel, WAIT 1', ha, shape));
      for (let i = 0; i < o.failovers; i++) {
        const f = await failover(set, ha);
        log(`failover ${i + 1}/${o.failovers}: +switch-master after ${f.switchMs.toFixed(0)} ms, first barrier answered after ${f.barrierMs.toFixed(0)} ms`);
        failovers.push(f);
      }
    } finally {
      await ha.close();
    }
  } finally {
    await set.stop();
  }
  const fo = { switchMs: summarize(failovers.map((f) => f.switchMs)), barrierMs: summarize(failovers.map((f) => f.barrierMs)), runs: failovers };
  const file = path.join(o.out, `ha-${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(file, JSON.stringify({ shape, modes, failover: fo }, null, 2) + '\n');
  const row = (m: ModeResult): string => `| ${m.mode} | ${m.saturationPerSecond.toFixed(0)} | ${m.barrier.p50.toFixed(2)} | ${m.barrier.p99.toFixed(2)} | ${m.commandsPerReport?.toFixed(1) ?? '-'} |`;
  process.stdout.write(
    [
      '| Redis | folds/s at saturation | barrier p50 ms | barrier p99 ms | Redis commands/report |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...modes.map(row),
      '',
      `failovers: ${failovers.length}; primary death -> +switch-master: median ${fo.switchMs.p50.toFixed(0)} ms (max ${fo.switchMs.max.toFixed(0)}); -> first barrier answered: median ${fo.barrierMs.p50.toFixed(0)} ms (max ${fo.barrierMs.max.toFixed(0)})`,
      `results: ${file}`,
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-ha: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
