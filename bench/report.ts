import type { FloorResult } from './floor';
import type { IsolatedResult, ScaleResult } from './latency';
import type { OpenClustersResult } from './open-clusters';
import type { BenchOptions } from './options';
import { topCommands } from './redis-stats';
import type { RampResult } from './throughput';
import type { WaitCostResult } from './wait-cost';
import type { SyncLatencyResult } from './sync-latency';
import type { Target } from './target';

export type { Target } from './target';

/** Everything one run measured; written as JSON and printed as a table. */
export interface BenchResult {
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; model: string; node: string; loadAverage: number[] };
  options: BenchOptions;
  /** PIDs of the processes the run started (all stopped before it exits). */
  pids: { servers: number[]; workers: number[] };
  floor: FloorResult;
  isolated: IsolatedResult;
  scale: ScaleResult;
  /** Redis commands per second the worker processes issue when idle (timers). */
  idleWorkerCommandsPerSecond: number;
  waitCost: WaitCostResult[];
  /** True when the cost phase ran every hold of both designs at once, each on its own Redis (bench/wait-cost.ts). */
  waitCostConcurrent?: boolean;
  openClusters: OpenClustersResult;
  ramps: RampResult[];
  /** lava-sync beside the barrier (bench/sync-latency.ts). */
  syncLatency?: SyncLatencyResult;
  targets: Target[];
}

const f = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : String(v));

export function targetsOf(r: Omit<BenchResult, 'targets' | 'finishedAt'>): Target[] {
  const floor = r.floor.nats.p50 + r.floor.redis.p50;
  const ratio = r.isolated.latency.p50 / floor;
  const one = r.ramps.find((x) => x.workers === 1);
  const two = r.ramps.find((x) => x.workers === 2);
  const ours = r.waitCost.filter((w) => w.design === 'cluster-sync');
  const poll = r.waitCost.filter((w) => w.design === 'polling');
  const costs = ours.map((w) => w.netCommandsPerBarrier ?? w.redisCommandsPerBarrier);
  const maxRss = Math.max(0, ...r.openClusters.workers.map((w) => w.rssMb));
  const out: Target[] = [
    { what: 'barrier p50 (one at a time) against the floor', target: '≤ 3 × floor', measured: `${f(ratio)} × (${f(r.isolated.latency.p50)} ms / ${f(floor)} ms)`, met: ratio <= 3 },
    {
      what: `barrier p99 at ${r.scale.clusters} clusters × ${r.scale.nodes} nodes`,
      target: '≤ 20 ms at 500 × 4',
      measured: `${f(r.scale.latency.p99)} ms`,
      met: r.scale.clusters >= 500 ? r.scale.latency.p99 <= 20 : undefined,
    },
  ];
  if (one) out.push({ what: 'reports folded/s, 1 worker process', target: '≥ 10000', measured: f(one.saturationPerSecond, 0), met: one.saturationPerSecond >= 10_000 });
  // Commands per report at the busiest level the worker kept up with (batches are fullest there).
  const kept = one?.levels.filter((l) => l.redisCommandsPerReport !== undefined && l.unanswered === 0 && l.foldedPerSecond >= 0.9 * l.sentPerSecond) ?? [];
  const busiest = kept.reduce<(typeof kept)[number] | undefined>((a, l) => (!a || l.foldedPerSecond > a.foldedPerSecond ? l : a), undefined);
  if (busiest?.redisCommandsPerReport !== undefined) {
    out.push({
      what: `Redis commands per report (1 worker, ${f(busiest.foldedPerSecond, 0)} reports/s, net of idle)`,
      target: '≤ 20',
      measured: f(busiest.redisCommandsPerReport, 1),
      met: busiest.redisCommandsPerReport <= 20,
    });
  }
  if (one && two)
    out.push({
      what: 'reports folded/s, 2 worker processes',
      target: 'more than 1',
      measured: `${f(two.saturationPerSecond, 0)} (${f(two.saturationPerSecond / one.saturationPerSecond)} ×)`,
      met: two.saturationPerSecond > one.saturationPerSecond,
    });
  if (ours.length > 1) {
    const growth = Math.max(...costs) / Math.max(1e-9, Math.min(...costs));
    const pg = poll.length > 1 ? Math.max(...poll.map((w) => w.redisCommandsPerBarrier)) / Math.max(1e-9, Math.min(...poll.map((w) => w.redisCommandsPerBarrier))) : NaN;
    out.push({
      what: `Redis commands per barrier (net of idle timers), held ${ours.map((w) => `${w.holdSeconds}`).join('/')} s`,
      target: 'independent of waiting',
      measured: `${costs.map((c) => f(c, 1)).join(' / ')} (polling: ${poll.map((w) => f(w.redisCommandsPerBarrier, 1)).join(' / ')}, ${f(pg, 1)} ×)`,
      met: growth <= 1.25,
    });
  }
  out.push({
    what: `worker RSS with ${r.openClusters.openInRedis} open clusters`,
    target: '≤ 200 MB at 10 000',
    measured: `${f(maxRss, 0)} MB`,
    met: r.openClusters.openInRedis >= 10_000 ? maxRss <= 200 : undefined,
  });
  return out;
}

/** CPU per folded report, µs: workers + Redis + NATS + the bench's simulated nodes. */
function perReport(l: RampResult['levels'][number]): string {
  const per = (cores: number): string => f((cores / Math.max(1, l.foldedPerSecond)) * 1e6, 0);
  return [per(l.cpu.workers.reduce((a, b) => a + b, 0)), per(l.cpu.redis), l.cpu.nats === undefined ? '-' : per(l.cpu.nats), per(l.cpu.bench)].join('+');
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => '  ' + r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}

export function formatResult(r: BenchResult): string {
  const lines: string[] = [];
  const o = r.options;
  lines.push(`cluster-sync bench, ${r.startedAt} .. ${r.finishedAt}`);
  lines.push(
    `machine: ${r.machine.cpus} CPUs (${r.machine.model}), node ${r.machine.node}, load average at start ${r.machine.loadAverage.map((x) => x.toFixed(2)).join(' ')}; Redis, NATS, workers and simulated nodes all on it`,
  );
  lines.push('');
  lines.push('floor (one at a time, same servers)');
  lines.push(
    table([
      ['', 'p50 ms', 'p99 ms', 'samples'],
      ['NATS request-reply', f(r.floor.nats.p50, 3), f(r.floor.nats.p99, 3), String(r.floor.nats.n)],
      ['Redis EVALSHA', f(r.floor.redis.p50, 3), f(r.floor.redis.p99, 3), String(r.floor.redis.n)],
    ]),
  );
  lines.push('');
  lines.push('barrier latency: last report sent -> each node has the answer');
  const s = r.scale;
  lines.push(
    table([
      ['', 'p50 ms', 'p99 ms', 'max ms', 'samples'],
      [`one barrier at a time (${o.nodes} nodes)`, f(r.isolated.latency.p50), f(r.isolated.latency.p99), f(r.isolated.latency.max), String(r.isolated.latency.n)],
      [`${s.clusters} clusters × ${s.nodes} at once, ${s.rounds} round(s)`, f(s.latency.p50), f(s.latency.p99), f(s.latency.max), String(s.latency.n)],
    ]),
  );
  const floor = r.floor.nats.p50 + r.floor.redis.p50;
  lines.push(`  ratio p50 (one at a time) / (NATS p50 + Redis p50) = ${f(r.isolated.latency.p50)} / ${f(floor, 3)} = ${f(r.isolated.latency.p50 / floor)}`);
  lines.push(
    `  scale phase: ${f(s.offeredPerSecond, 0)} reports/s offered (random pause ≤ ${s.thinkMs} ms), ${f(s.redisCommandsPerBarrier, 1)} Redis commands per barrier (${topCommands(s.redisCommands, 8, s.barriers)}), worker CPU ${s.workerCpuSeconds.map((c) => f(c)).join('+')} s`,
  );
  lines.push('');
  lines.push(`throughput: open-loop ramp, ${o.levelSeconds} s per level, until folding falls behind; limit p99 ${o.limitMs} ms (CPU in cores)`);
  const rows: string[][] = [
    ['workers', 'offered/s', 'sent/s', 'folded/s', 'p50 ms', 'p99 ms', 'max ms', 'worker CPU', 'Redis CPU', 'NATS CPU', 'bench CPU', 'CPU µs/report w+R+N+b', 'Redis cmds/report'],
  ];
  for (const ramp of r.ramps) {
    for (const l of ramp.levels) {
      rows.push([
        String(ramp.workers),
        String(l.offered),
        f(l.sentPerSecond, 0),
        f(l.foldedPerSecond, 0),
        f(l.latency.p50),
        f(l.latency.p99),
        f(l.latency.max),
        l.cpu.workers.map((c) => f(c)).join('+'),
        f(l.cpu.redis),
        l.cpu.nats === undefined ? '-' : f(l.cpu.nats),
        f(l.cpu.bench),
        perReport(l),
        l.redisCommandsPerReport === undefined ? '-' : f(l.redisCommandsPerReport, 1),
      ]);
    }
  }
  lines.push(table(rows));
  for (const ramp of r.ramps) {
    lines.push(`  ${ramp.workers} worker(s): at most ${f(ramp.saturationPerSecond, 0)} reports folded/s; ${f(ramp.withinLimitPerSecond, 0)}/s with p99 ≤ ${o.limitMs} ms`);
    const sat = ramp.levels.reduce<RampResult['levels'][number] | undefined>((a, l) => (!a || l.foldedPerSecond > a.foldedPerSecond ? l : a), undefined);
    if (sat && sat.foldedPerSecond > 0) {
      const us = (cores: number): string => f((cores / sat.foldedPerSecond) * 1e6, 0);
      const workers = sat.cpu.workers.map((c, i) => `worker ${i + 1} ${us(c)}`).join(', ');
      lines.push(
        `    at saturation (offered ${sat.offered}/s): CPU µs per folded report, per process: ${workers}, Redis ${us(sat.cpu.redis)}, NATS ${sat.cpu.nats === undefined ? '-' : us(sat.cpu.nats)}, ` +
          `bench ${us(sat.cpu.bench)}; Redis commands per report sent (net of idle) ${sat.redisCommandsPerReport === undefined ? '-' : f(sat.redisCommandsPerReport, 1)}`,
      );
    }
  }
  lines.push('');
  lines.push(
    `cost against waiting: ${o.holdClusters} clusters × ${o.nodes} at start; the first nodes report within ${o.pollInterval} s, the last is held back, then reports within ${Math.min(1, o.pollInterval)} s; polling interval ${o.pollInterval} s; cluster-sync+hb rows: its nodes also send heartbeats every ${o.heartbeat} s, as the agent does${o.heartbeat > 0 ? '' : ' (--heartbeat 0: not run)'}`,
  );
  lines.push(
    "  cluster-sync: the barrier alone; cluster-sync+hb: the same with every node's heartbeats, which buy dead-node detection in 3 intervals (Compass-CI has none: a dead node holds its cluster until the 8 h timeout)",
  );
  lines.push(
    r.waitCostConcurrent
      ? '  every hold of both designs ran at the same time, each on a Redis server of its own (cluster-sync: with its own worker process, net of its own idle rate)'
      : '  the holds ran one after another on one Redis (cluster-sync, then polling with the workers stopped)',
  );
  lines.push(
    table([
      ['design', 'held s', 'p50 ms', 'p99 ms', 'max ms', 'Redis cmds/barrier', 'net of idle timers', 'busiest (per barrier)'],
      ...r.waitCost.map((w) => [
        w.design,
        String(w.holdSeconds),
        f(w.latency.p50),
        f(w.latency.p99),
        f(w.latency.max),
        f(w.redisCommandsPerBarrier, 1),
        f(w.netCommandsPerBarrier ?? w.redisCommandsPerBarrier, 1),
        topCommands(w.redisCommands, 4, w.clusters),
      ]),
    ]),
  );
  const ours = r.waitCost.filter((w) => w.design === 'cluster-sync');
  const poll = r.waitCost.filter((w) => w.design === 'polling');
  const slope = (rows: WaitCostResult[]): number | undefined => {
    const a = rows[0];
    const b = rows[rows.length - 1];
    const net = (w: WaitCostResult): number => w.netCommandsPerBarrier ?? w.redisCommandsPerBarrier;
    return a && b && b.holdSeconds > a.holdSeconds ? ((net(b) - net(a)) * a.clusters) / (b.holdSeconds - a.holdSeconds) : undefined;
  };
  const ownIdle = ours.filter((w) => w.idleCommandsPerSecond !== undefined);
  lines.push(
    `  idle worker processes issue ${f(r.idleWorkerCommandsPerSecond, 1)} Redis commands/s in all (dead-node sweep, stalled checks, blocking waits), however many clusters wait` +
      (r.waitCostConcurrent && ownIdle.length > 0 ? `; the cluster-sync holds' own workers: ${ownIdle.map((w) => f(w.idleCommandsPerSecond as number, 1)).join(' / ')}/s, taken off their rows` : ''),
  );
  const so = slope(ours);
  const sh = slope(r.waitCost.filter((w) => w.design === 'cluster-sync+hb'));
  const sp = slope(poll);
  if (so !== undefined && sp !== undefined) {
    lines.push(
      `  extra Redis commands per second of waiting, all ${o.holdClusters} clusters together: cluster-sync ${f(so, 1)}` +
        (sh !== undefined ? `, with heartbeats every ${o.heartbeat} s ${f(sh, 1)} (${f(sh / o.holdClusters, 2)} per waiting cluster)` : '') +
        `, polling ${f(sp, 1)} (${f(sp / o.holdClusters, 2)} per waiting cluster)`,
    );
  }
  lines.push('');
  const oc = r.openClusters;
  lines.push(`memory: ${oc.clusters} clusters created and taken through start in ${f(oc.seconds, 1)} s (${f((oc.clusters * oc.nodes) / oc.seconds, 0)} reports/s); ${oc.openInRedis} open in Redis`);
  for (const w of oc.workers) lines.push(`  worker pid ${w.pid}: RSS ${f(w.rssMb, 0)} MB (peak ${f(w.peakRssMb, 0)} MB), CPU ${f(w.cpuSeconds, 1)} s since start`);
  lines.push('');
  lines.push('targets');
  lines.push(table([['', 'target', 'measured', ''], ...r.targets.map((t) => [t.what, t.target, t.measured, t.met === undefined ? 'run smaller than the target size' : t.met ? 'met' : 'MISSED'])]));
  return lines.join('\n');
}
