import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, assertBuilt } from '../helpers/processes';
import { runBench } from './run-bench';

/**
 * Smoke test of `npm run bench -- --quick`: it runs the built bench as its
 * own process and checks that it measured every figure (present, positive)
 * and stopped every process it started. It never judges a time: this
 * machine is shared.
 */
const BENCH = path.join(ROOT, 'dist/bench/run.js');

interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function positive(s: Summary): void {
  expect(s.n).toBeGreaterThan(0);
  expect(s.p50).toBeGreaterThan(0);
  expect(s.p99).toBeGreaterThanOrEqual(s.p50);
  expect(s.max).toBeGreaterThanOrEqual(s.p99);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let out: string;
beforeAll(() => {
  assertBuilt();
  out = mkdtempSync(path.join(os.tmpdir(), 'cs-bench-'));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

test('bench --quick measures latency, the floor, throughput, cost and the polling baseline, and stops what it started', async () => {
  const { code, stdout, stderr } = await runBench(BENCH, ['--quick', '--out', out, '--name', 'smoke']);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toMatch(/barrier latency/);
  expect(stdout).toMatch(/targets/);

  const r = JSON.parse(readFileSync(path.join(out, 'smoke.json'), 'utf8')) as {
    floor: { nats: Summary; redis: Summary };
    isolated: { latency: Summary };
    scale: { latency: Summary; redisCommandsPerBarrier: number; workerCpuSeconds: number[] };
    ramps: { levels: { foldedPerSecond: number; latency: Summary; failed: number; failures: string[] }[]; saturationPerSecond: number }[];
    waitCostConcurrent: boolean;
    waitCost: { design: string; holdSeconds: number; latency: Summary; redisCommandsPerBarrier: number }[];
    openClusters: { workers: { rssMb: number; cpuSeconds: number }[]; openInRedis: number };
    targets: { what: string; measured: string }[];
    syncLatency: { nodes: number; barrier: Summary; sync: Summary };
    pids: { servers: number[]; workers: number[] };
  };
  positive(r.floor.nats);
  positive(r.floor.redis);
  positive(r.isolated.latency);
  positive(r.scale.latency);
  expect(r.scale.redisCommandsPerBarrier).toBeGreaterThan(0);
  expect(r.scale.workerCpuSeconds.every((c) => c > 0)).toBe(true);
  expect(r.ramps.length).toBeGreaterThan(0);
  for (const level of r.ramps.flatMap((x) => x.levels)) {
    expect(level.foldedPerSecond).toBeGreaterThan(0);
    positive(level.latency);
    // Every reply and answer of the ramp's simulated nodes was checked: none refused, none aborted.
    expect({ failed: level.failed, failures: level.failures }).toEqual({ failed: 0, failures: [] });
  }
  // The holds of both designs ran at once, each on its own Redis server (and cluster-sync's with its own worker).
  expect(r.waitCostConcurrent).toBe(true);
  for (const design of ['cluster-sync', 'cluster-sync+hb', 'polling']) {
    const rows = r.waitCost.filter((w) => w.design === design);
    expect(rows.map((w) => w.holdSeconds)).toEqual([0, 1]);
    for (const w of rows) {
      positive(w.latency);
      expect(w.redisCommandsPerBarrier).toBeGreaterThan(0);
    }
  }
  expect(r.openClusters.workers.length).toBeGreaterThan(0);
  expect(r.openClusters.workers.every((w) => w.rssMb > 0 && w.cpuSeconds > 0)).toBe(true);
  expect(r.openClusters.openInRedis).toBeGreaterThan(0);
  expect(r.targets.length).toBeGreaterThanOrEqual(5);
  // lava-sync beside the barrier, 8 nodes (issue 15).
  expect(r.syncLatency.nodes).toBe(8);
  positive(r.syncLatency.barrier);
  positive(r.syncLatency.sync);
  expect(stdout).toMatch(/named sync: last send -> every node released/);

  // Every server and worker process the bench started is gone.
  const pids = [...r.pids.servers, ...r.pids.workers];
  // Redis and NATS, one Redis per cost hold (2 holds × 2 designs), the workers of the run and of the cluster-sync holds.
  expect(r.pids.servers.length).toBeGreaterThanOrEqual(6);
  expect(r.pids.workers.length).toBeGreaterThanOrEqual(3);
  expect(pids.filter(alive)).toEqual([]);
}, 180_000);
