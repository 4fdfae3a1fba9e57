import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { CommanderError } from 'commander';
import path from 'node:path';
import { Environment } from './environment';
import { labMain } from './lab';
import { FoldTracker } from './clusters';
import { measureFloor } from './floor';
import { isolatedLatency, scaleLatency } from './latency';
import { openClusters } from './open-clusters';
import { parseBenchOptions } from './options';
import { latencyPlot } from './plot';
import { formatResult, targetsOf } from './report';
import type { BenchResult } from './report';
import { ramp } from './throughput';
import type { RampResult } from './throughput';
import { costPhase, idleCommandsPerSecond } from './wait-cost';
import { formatSyncLatency, syncLatency, syncTargets } from './sync-latency';
import type { WaitCostResult } from './wait-cost';

/**
 * `npm run bench -- [--clusters C] [--nodes N] [--rounds R] [--workers W] [--quick] [--poll-interval S]`
 *
 * One run, side by side on the same servers: the floor (NATS and Redis
 * round trips), barrier latency through real worker processes and the real
 * NodeClient over NATS, the throughput ramp, Redis commands per barrier
 * against waiting time for cluster-sync and for Compass-CI's polling, and
 * worker memory with many clusters open. Prints a table and writes JSON and
 * an SVG plot under bench/results/.
 */

const ROOT = path.resolve(__dirname, '../..');
const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function main(): Promise<number> {
  // `npm run bench -- --lab`: the lab simulation of admission (bench/lab.ts) instead.
  if (process.argv.includes('--lab')) return labMain(process.argv.slice(2));
  const opts = parseBenchOptions(process.argv.slice(2), ROOT);
  const startedAt = new Date().toISOString();
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '?', node: process.version, loadAverage: os.loadavg() };
  mkdirSync(opts.out, { recursive: true });
  log(`bench: starting${opts.redisUrl || opts.natsUrl ? ' (configured servers)' : ' Redis and NATS'} and ${opts.workers} worker process(es)`);
  const env = await Environment.start({
    redisUrl: opts.redisUrl,
    natsUrl: opts.natsUrl,
    nodeConnections: opts.nodeConnections,
    workerNodeArgs: opts.cpuProf ? ['--cpu-prof'] : [],
    workerArgs: opts.concurrency === undefined ? [] : ['--concurrency', String(opts.concurrency)],
    workerCwd: opts.out,
  });
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log(`bench: ${sig}, stopping everything it started`);
    void env.close().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const pids = { servers: [] as number[], workers: [] as number[] };
  const notePids = (): void => {
    for (const p of env.pids.servers) if (!pids.servers.includes(p)) pids.servers.push(p);
    for (const p of env.pids.workers) if (!pids.workers.includes(p)) pids.workers.push(p);
  };
  const tracker = new FoldTracker(env);
  try {
    await env.setWorkers(opts.workers);
    notePids();
    log('bench: floor');
    const floor = await measureFloor(env, opts.floorSamples);
    tracker.start();
    log(`bench: ${opts.isolatedBarriers} barriers one at a time`);
    const isolated = await isolatedLatency(env, tracker, opts.isolatedBarriers, opts.nodes);
    // issue 15: lava-sync beside the barrier, 8 nodes, same run (bench/sync-latency.ts).
    if (opts.lavaSync) log('bench: lava-sync against the barrier, 8 nodes');
    const syncRun = opts.lavaSync ? await syncLatency(env, { rounds: opts.quick ? 20 : 200, nodes: 8 }) : undefined;
    log(`bench: ${opts.clusters} clusters × ${opts.nodes} nodes at once, ${opts.rounds} round(s)`);
    const scale = await scaleLatency(env, { clusters: opts.clusters, nodes: opts.nodes, rounds: opts.rounds, thinkMs: opts.thinkMs });
    // Both designs get the same arrivals: the first nodes within one polling interval, the last within a second of the hold.
    const arrivals = { spreadMs: opts.pollInterval * 1000, lastSpreadMs: Math.min(1000, opts.pollInterval * 1000) };
    log('bench: Redis commands of idle workers');
    const idlePerSecond = await idleCommandsPerSecond(env, opts.quick ? 2 : 5);
    log(`bench: cost against waiting, holds ${opts.holds.join(', ')} s of both designs at once, each on its own Redis`);
    const cost = await costPhase(env, {
      holds: opts.holds,
      clusters: opts.holdClusters,
      nodes: opts.nodes,
      workers: opts.workers,
      pollIntervalSeconds: opts.pollInterval,
      heartbeatMs: opts.heartbeat * 1000,
      arrivals,
      idleSeconds: opts.quick ? 2 : 5,
      log,
    });
    const waitCost: WaitCostResult[] = cost.rows;
    for (const p of cost.pids.servers) if (!pids.servers.includes(p)) pids.servers.push(p);
    for (const p of cost.pids.workers) if (!pids.workers.includes(p)) pids.workers.push(p);
    await tracker.stop();
    log(`bench: ${opts.openClusters} open clusters`);
    const open = await openClusters(env, opts.openClusters, opts.nodes);
    const ramps: RampResult[] = [];
    for (const w of opts.rampWorkers) {
      log(`bench: throughput ramp with ${w} worker process(es)`);
      ramps.push(await ramp(env, { workers: w, levels: opts.rampLevels, seconds: opts.levelSeconds, nodes: opts.nodes, limitMs: opts.limitMs, idlePerSecond, log }));
      notePids();
    }
    const partial = {
      startedAt,
      machine,
      options: opts,
      pids,
      floor,
      isolated,
      scale,
      idleWorkerCommandsPerSecond: idlePerSecond,
      waitCost,
      waitCostConcurrent: cost.concurrent,
      openClusters: open,
      ramps,
    };
    const result: BenchResult = {
      ...partial,
      ...(syncRun ? { syncLatency: syncRun } : {}),
      finishedAt: new Date().toISOString(),
      targets: [...targetsOf(partial), ...(syncRun ? syncTargets(syncRun) : [])],
    };
    const base = path.join(opts.out, opts.name);
    writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
    writeFileSync(`${base}.svg`, latencyPlot(ramps, opts.limitMs, `cluster-sync: barrier latency against offered load (${opts.nodes}-node clusters)`));
    process.stdout.write(`${formatResult(result)}\n\n${syncRun ? `${formatSyncLatency(syncRun)}\n\n` : ''}results: ${base}.json\nplot: ${base}.svg\n`);
    return 0;
  } finally {
    await tracker.stop();
    await env.close();
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    // Commander has already printed usage errors and --help.
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
