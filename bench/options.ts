import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';

/** Everything a bench run can be told; `--quick` changes the defaults, explicit flags still win. */
export interface BenchOptions {
  /** Clusters driven at once in the latency-at-scale phase. Default 500 (quick 40). */
  clusters: number;
  /** Nodes per cluster. Default 4. */
  nodes: number;
  /** Rounds of the latency-at-scale phase, each with fresh clusters. Default 3 (quick 1). */
  rounds: number;
  /** Worker processes for the latency and cost phases. Default 1. */
  workers: number;
  /** Worker process counts the throughput ramp is run with. Default 1,2 (quick 1). */
  rampWorkers: number[];
  /** Offered loads of the ramp, reports/s. */
  rampLevels: number[];
  /** Length of one ramp level, s. Default 5 (quick 1.5). */
  levelSeconds: number;
  /** The ramp stops after the first level whose p99 passes this, ms. Default 50. */
  limitMs: number;
  /** Upper end of each node's random pause before a report in the scale phase, ms. Default 5000 (quick 500). */
  thinkMs: number;
  /** Barriers measured one at a time against the floor. Default 300 (quick 60). */
  isolatedBarriers: number;
  /** Samples of each floor round trip. Default 2000 (quick 500). */
  floorSamples: number;
  /** Polling interval of the Compass-CI baseline, s. Default 10 (quick 0.5). */
  pollInterval: number;
  /** How long barriers are held open in the cost-against-waiting phase, s; all run at once. Default 0,60,600 (quick 0,1). */
  holds: number[];
  /** Clusters in the cost-against-waiting phase. Default 100 (quick 20). */
  holdClusters: number;
  /** Heartbeat interval of cluster-sync's nodes in the cost phase, s; 0: none. Default 5, the agent's default (quick 0.5). */
  heartbeat: number;
  /** Clusters left open for the memory check. Default 10 000 (quick 500). */
  openClusters: number;
  /** NATS connections the simulated nodes share. Default 8. */
  nodeConnections: number;
  /** `--concurrency` of each worker process; unset: the worker's default. */
  concurrency?: number;
  quick: boolean;
  /** Run the lava-sync phase (named syncs, issue 15). `--no-lava-sync` for workers built before it. */
  lavaSync: boolean;
  /** Start workers with `node --cpu-prof` (profiles in the results folder). */
  cpuProf: boolean;
  redisUrl?: string;
  natsUrl?: string;
  /** Results folder. Default bench/results. */
  out: string;
  /** File name (without extension) of the JSON and SVG. Default: the start time. */
  name: string;
}

const int =
  (what: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a whole number of at least 1, not ${JSON.stringify(v)}`);
    return n;
  };
const num =
  (what: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${what} must be a number of at least 0, not ${JSON.stringify(v)}`);
    return n;
  };
const list =
  (what: string, each: (v: string) => number) =>
  (v: string): number[] =>
    v.split(',').map((x) => each(x.trim()));

export function parseBenchOptions(argv: string[], root: string): BenchOptions {
  const program = new Command('bench')
    .description('barrier latency and fold throughput of cluster-sync, against the floor and the polling design')
    .option('--quick', 'small and short (under 2 minutes): the smoke test')
    .option('--clusters <C>', 'clusters at once in the latency-at-scale phase', int('--clusters'))
    .option('--nodes <N>', 'nodes per cluster', int('--nodes'))
    .option('--rounds <R>', 'rounds of the latency-at-scale phase', int('--rounds'))
    .option('--workers <W>', 'worker processes for the latency and cost phases', int('--workers'))
    .option('--ramp-workers <list>', 'worker process counts for the throughput ramp, e.g. 1,2', list('--ramp-workers', int('--ramp-workers')))
    .option('--ramp-levels <list>', 'offered loads of the ramp, reports/s, e.g. 1000,2000,4000', list('--ramp-levels', int('--ramp-levels')))
    .option('--level-seconds <s>', 'length of one ramp level, s', num('--level-seconds'))
    .option('--limit-ms <ms>', 'p99 that ends the ramp, ms', num('--limit-ms'))
    .option('--think-ms <ms>', 'longest random pause of a node before a report (scale phase), ms', num('--think-ms'))
    .option('--isolated <n>', 'barriers measured one at a time', int('--isolated'))
    .option('--floor-samples <n>', 'samples of each floor round trip', int('--floor-samples'))
    .option('--poll-interval <S>', 'polling interval of the Compass-CI baseline, s', num('--poll-interval'))
    .option('--holds <list>', 'seconds barriers are held open in the cost phase (all at once, each on its own Redis), e.g. 0,60,600', list('--holds', num('--holds')))
    .option('--hold-clusters <n>', 'clusters in the cost phase', int('--hold-clusters'))
    .option('--heartbeat <s>', "heartbeat interval of cluster-sync's nodes in the cost phase, s (0: none)", num('--heartbeat'))
    .option('--open-clusters <n>', 'clusters left open for the memory check', int('--open-clusters'))
    .option('--node-connections <n>', 'NATS connections shared by the simulated nodes', int('--node-connections'))
    .option('--concurrency <n>', 'reports each worker process folds at once (worker --concurrency)', int('--concurrency'))
    .option('--no-lava-sync', 'skip the lava-sync phase (for workers of a build that has no named messages, under CS_BENCH_WORKER_CLI)')
    .option('--cpu-prof', 'run workers under node --cpu-prof (profiles go to the results folder)')
    .option('--redis-url <url>', 'use this Redis instead of starting one (env CS_REDIS_URL)')
    .option('--nats-url <url>', 'use this NATS instead of starting one (env CS_NATS_URL)')
    .option('--out <dir>', 'results folder')
    .option('--name <name>', 'file name of the results, without extension')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(`bench: ${s}`) });
  program.parse(argv, { from: 'user' });
  const o = program.opts<Record<string, unknown>>();
  const quick = Boolean(o.quick);
  const pick = <T>(key: string, full: T, small: T): T => (o[key] as T | undefined) ?? (quick ? small : full);
  return {
    quick,
    clusters: pick('clusters', 500, 40),
    nodes: pick('nodes', 4, 4),
    rounds: pick('rounds', 3, 1),
    workers: pick('workers', 1, 1),
    rampWorkers: pick('rampWorkers', [1, 2], [1]),
    rampLevels: pick('rampLevels', [500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000, 15000, 20000], [500, 2000, 4000]),
    levelSeconds: pick('levelSeconds', 5, 1.5),
    limitMs: pick('limitMs', 50, 50),
    thinkMs: pick('thinkMs', 5000, 500),
    isolatedBarriers: pick('isolated', 300, 60),
    floorSamples: pick('floorSamples', 2000, 500),
    pollInterval: pick('pollInterval', 10, 0.5),
    holds: pick('holds', [0, 60, 600], [0, 1]),
    holdClusters: pick('holdClusters', 100, 20),
    heartbeat: pick('heartbeat', 5, 0.5),
    openClusters: pick('openClusters', 10_000, 500),
    nodeConnections: pick('nodeConnections', 8, 4),
    concurrency: o.concurrency as number | undefined,
    lavaSync: o.lavaSync !== false,
    cpuProf: Boolean(o.cpuProf),
    redisUrl: (o.redisUrl as string | undefined) ?? (process.env.CS_REDIS_URL || undefined),
    natsUrl: (o.natsUrl as string | undefined) ?? (process.env.CS_NATS_URL || undefined),
    out: path.resolve((o.out as string | undefined) ?? path.join(root, 'bench/results')),
    name: (o.name as string | undefined) ?? new Date().toISOString().replace(/[:.]/g, '-'),
  };
}
