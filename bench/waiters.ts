import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, startNats, startRedis } from '../src/services/local-servers';
import { sampleProcess } from './proc-stats';
import { round, summarize } from './stats';
import type { Summary } from './stats';
import { unrelatedRequests } from './unrelated-client';
import { deliveredTo, get, startStack, submitPair } from './waiter-stack';
import type { Answer } from './waiter-stack';

/**
 * `npm run bench:waiters -- [N ...]` (default 1000 2000 5000): the fan-out of
 * legacy long polls (issue 23). For each N, each kind (N `state=wait&msg=m`
 * message waits, N `state=wait_start` barrier waits) and each build, on the
 * same Redis and NATS, one after the other: N requests of one node of a
 * two-node cluster are opened at once, then the other node releases them
 * (a `send`, its `wait_start`). Measured: the scheduler's CPU per wait
 * (/proc, from the first request to the last answer), the messages NATS
 * delivered to the scheduler's connection (its /connz `out_msgs`), release
 * latency (the releasing request sent -> each answer), an unrelated cluster's
 * legacy `write_state` latency while the N open (against the same with
 * nothing open; one every 50 ms, from a worker thread of its own
 * (unrelated-client.ts); their own CPU and deliveries, measured alone
 * first, are taken off the scheduler's totals), and connection errors.
 * "before" is main's build, given as
 * CS_BENCH_BEFORE_CLI (its dist/src/cli/main.js); "after" is this build.
 * CS_BENCH_KINDS (default `message,barrier`) picks the kinds;
 * CS_BENCH_OUT the folder of the JSON (default bench/results);
 * CS_BENCH_SCHEDULER_NODE_ARGS (space-separated, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`) is given to node in each
 * scheduler process, to profile it under the bench's load.
 */
const ROOT = path.resolve(__dirname, '../..');
const AFTER_CLI = path.resolve(__dirname, '../src/cli/main.js');
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const errorText = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err);
/** Longest a phase (opening, releasing) may take before the case is reported as not finished, ms. */
const PHASE_LIMIT_MS = 300_000;

interface CaseResult {
  build: string;
  kind: 'message' | 'barrier';
  n: number;
  /** Negative when the N waits cost less than the noise of the unrelated requests' share taken off (small N). */
  schedulerCpuMsPerWait: number;
  deliveries: number;
  release: Summary;
  unrelatedIdle: Summary;
  unrelatedOpening: Summary;
  /** Unrelated requests during the opening that took more than twice the idle p50. */
  unrelatedOver2x: number;
  /** Of those, the ones in flight while the scheduler was still taking in the N connections (its intake). */
  unrelatedOver2xDuringIntake: number;
  /** From the first of the N requests to the last 100 ms in which the scheduler was busy (over 30 % of a core), s. */
  intakeSeconds: number;
  errors: Record<string, number>;
  wrongAnswers: number;
  openSeconds: number;
  loadAverage: [number, number];
}

const LEGACY = '/~lkp/cgi-bin/lkp-cluster-sync';

/** Pause between the unrelated cluster's requests, ms: another lab cluster going about its life, not a flood. */
const UNRELATED_GAP_MS = 50;

/** Waits until the process's CPU stays under 5 % for two 1 s windows (it has taken in every request). */
async function quiet(pid: number, deadline: number): Promise<void> {
  let calm = 0;
  let last = sampleProcess(pid)?.cpuSeconds ?? 0;
  while (calm < 2 && Date.now() < deadline) {
    await sleep(1000);
    const now = sampleProcess(pid)?.cpuSeconds ?? 0;
    calm = now - last < 0.05 ? calm + 1 : 0;
    last = now;
  }
}

/** Slices of this length whose scheduler CPU is above BUSY_SHARE of a core are its intake of the N connections. */
const SLICE_MS = 100;
const BUSY_SHARE = 0.3;

/**
 * Samples `pid`'s CPU every SLICE_MS until stopped; `lastBusyAt` is the end
 * (epoch ms) of the last slice above BUSY_SHARE: when the scheduler had taken
 * in the connections (a held wait costs nothing until its answer).
 */
function busyTracker(pid: number): { stop: () => Promise<number> } {
  let last = sampleProcess(pid)?.cpuSeconds ?? 0;
  let lastBusyAt = Date.now();
  const timer = setInterval(() => {
    const now = sampleProcess(pid)?.cpuSeconds ?? last;
    if ((now - last) * 1000 > BUSY_SHARE * SLICE_MS) lastBusyAt = Date.now();
    last = now;
  }, SLICE_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      return lastBusyAt;
    },
  };
}

async function runCase(build: string, cli: string, kind: 'message' | 'barrier', n: number, servers: { redisUrl: string; natsUrl: string; monitorUrl: string }): Promise<CaseResult> {
  const ns = `bw${build[0]}${kind[0]}${n}`;
  const config = { redisUrl: servers.redisUrl, natsUrl: servers.natsUrl, subjectPrefix: ns, keyPrefix: `${ns}:` };
  const nodeArgs = (process.env.CS_BENCH_SCHEDULER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const { worker, scheduler, url } = await startStack(cli, config, await freePort(), nodeArgs);
  const spid = scheduler.child.pid!;
  try {
    const target = await submitPair(url, `${ns}t`);
    const other = await submitPair(url, `${ns}o`);
    // The unrelated requests' own CPU and deliveries, measured alone, are taken off the totals below.
    const idleCpu0 = sampleProcess(spid)?.cpuSeconds ?? 0;
    const idleOut0 = await deliveredTo(servers.monitorUrl, 'cluster-sync-scheduler');
    const unrelatedIdle = (await unrelatedRequests(url, other.a, UNRELATED_GAP_MS, 40).done).map((u) => u.ms);
    const cpuPerUnrelated = ((sampleProcess(spid)?.cpuSeconds ?? 0) - idleCpu0) / unrelatedIdle.length;
    const outPerUnrelated = ((await deliveredTo(servers.monitorUrl, 'cluster-sync-scheduler')) - idleOut0) / unrelatedIdle.length;
    const waitUrl = kind === 'message' ? `${url}${LEGACY}?job_id=${target.a}&state=wait&msg=m` : `${url}${LEGACY}?job_id=${target.a}&state=wait_start`;
    const releaseUrl = kind === 'message' ? `${url}${LEGACY}?job_id=${target.b}&state=send&msg=m&k=v` : `${url}${LEGACY}?job_id=${target.b}&state=wait_start`;
    const load0 = os.loadavg()[0] ?? 0;
    const cpu0 = sampleProcess(spid)?.cpuSeconds ?? 0;
    const out0 = await deliveredTo(servers.monitorUrl, 'cluster-sync-scheduler');
    const errors: Record<string, number> = {};
    let connected = 0;
    let settled = 0;
    const t0 = performance.now();
    const startedAt = Date.now();
    const busy = busyTracker(spid);
    const answers = Array.from({ length: n }, () =>
      get(waitUrl, () => connected++)
        .catch((err: unknown) => {
          const code = (err as NodeJS.ErrnoException).code ?? String(err);
          errors[code] = (errors[code] ?? 0) + 1;
          return undefined;
        })
        .finally(() => settled++),
    );
    const deadline = Date.now() + PHASE_LIMIT_MS;
    const opening = unrelatedRequests(url, other.a, UNRELATED_GAP_MS);
    while (connected + Object.values(errors).reduce((a, b) => a + b, 0) < n && Date.now() < deadline) await sleep(200);
    // Every connection is in: the unrelated requests stop after 2 s more, then the scheduler settles.
    await sleep(2000);
    opening.stop();
    const unrelatedSamples = await opening.done;
    const intakeEndAt = await busy.stop();
    const unrelatedOpening = unrelatedSamples.map((u) => u.ms);
    await quiet(spid, deadline);
    const openSeconds = (performance.now() - t0) / 1000;
    const early = settled;
    const tr = performance.now();
    // The release and the answers it brings get PHASE_LIMIT_MS between them: a scheduler that cannot answer
    // in that time is reported as such (main's, at 5,000 message waits, had not answered after 10 minutes).
    const limit = new AbortController();
    const expired = sleep(PHASE_LIMIT_MS, undefined, { signal: limit.signal }).then(
      () => undefined,
      () => undefined,
    );
    const rel = (await Promise.race([get(releaseUrl).catch((err: unknown) => ({ status: 0, body: errorText(err), at: performance.now() })), expired])) ?? { status: -1, body: '', at: 0 };
    // The answers as they come: those that came in time count even when others did not.
    const arrived: Answer[] = [];
    const all = Promise.all(answers.map((a) => a.then((x) => void (x && arrived.push(x)))));
    const finished = (await Promise.race([all.then(() => true), expired])) === true;
    limit.abort();
    const done = [...arrived];
    const cpu1 = sampleProcess(spid)?.cpuSeconds ?? 0;
    const out1 = await deliveredTo(servers.monitorUrl, 'cluster-sync-scheduler');
    const good = done.filter((a) => a.status === 200 && (kind === 'message' ? a.body.startsWith('ok') : a.body === 'start'));
    if (rel.status === -1) errors[`release not answered within ${PHASE_LIMIT_MS / 1000} s`] = 1;
    else if (rel.status !== 200) errors[`release HTTP ${rel.status}`] = 1;
    if (early > 0) errors['answered before the release'] = early;
    // Answers still missing when the limit passed (the scheduler is stopped below: its resets are not counted).
    const missing = finished ? 0 : n - settled;
    if (missing > 0) errors[`not answered within ${PHASE_LIMIT_MS / 1000} s of the release`] = missing;
    const errorsNow = { ...errors };
    const slow = unrelatedSamples.filter((u) => u.ms > 2 * summarize(unrelatedIdle).p50);
    return {
      build,
      kind,
      n,
      schedulerCpuMsPerWait: ((cpu1 - cpu0 - cpuPerUnrelated * unrelatedOpening.length) * 1000) / n,
      deliveries: Math.round(out1 - out0 - outPerUnrelated * unrelatedOpening.length),
      release: summarize(good.map((a) => a.at - tr)),
      unrelatedIdle: summarize(unrelatedIdle),
      unrelatedOpening: summarize(unrelatedOpening),
      unrelatedOver2x: slow.length,
      unrelatedOver2xDuringIntake: slow.filter((u) => u.sentAt <= intakeEndAt).length,
      intakeSeconds: (intakeEndAt - startedAt) / 1000,
      errors: errorsNow,
      wrongAnswers: Math.max(0, n - good.length - Object.values(errorsNow).reduce((a, b) => a + b, 0) + early),
      openSeconds,
      loadAverage: [load0, os.loadavg()[0] ?? 0],
    };
  } finally {
    await scheduler.stop();
    await worker.stop();
  }
}

function table(rows: CaseResult[]): string {
  const head =
    '| kind | N | build | scheduler CPU per wait | deliveries into the scheduler | release p50 / p99 | unrelated write_state during opening: p50 / max (idle p50) | of them over 2× idle (sent during the intake) | intake | errors | load avg (1 min) |';
  const lines = [head, '|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const errs =
      Object.entries(r.errors)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || (r.wrongAnswers ? `${r.wrongAnswers} wrong` : 'none');
    lines.push(
      `| ${r.kind} | ${r.n.toLocaleString('en')} | ${r.build} | ${r.schedulerCpuMsPerWait < 0 ? 'below the noise' : `${round(r.schedulerCpuMsPerWait)} ms`} | ${r.deliveries.toLocaleString('en')} | ${round(r.release.p50)} / ${round(r.release.p99)} ms | ${round(r.unrelatedOpening.p50)} / ${round(r.unrelatedOpening.max)} ms (${round(r.unrelatedIdle.p50)} ms) | ${r.unrelatedOver2x ?? '-'} of ${r.unrelatedOpening.n} (${r.unrelatedOver2xDuringIntake}) | ${r.intakeSeconds.toFixed(1)} s | ${errs} | ${r.loadAverage.map((l) => l.toFixed(1)).join(' -> ')} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const ns = process.argv
    .slice(2)
    .map(Number)
    .filter((x) => Number.isInteger(x) && x > 0);
  const sizes = ns.length > 0 ? ns : [1000, 2000, 5000];
  const kinds = (process.env.CS_BENCH_KINDS ?? 'message,barrier').split(',').filter((k): k is 'message' | 'barrier' => k === 'message' || k === 'barrier');
  const before = process.env.CS_BENCH_BEFORE_CLI;
  const builds: [string, string][] = [...(before ? ([['before', path.resolve(before)]] as [string, string][]) : []), ['after', AFTER_CLI]];
  if (!before) log('bench:waiters: CS_BENCH_BEFORE_CLI not set: measuring this build only');
  const [redis, nats] = await Promise.all([startRedis(), startNats({ monitor: true })]);
  const rows: CaseResult[] = [];
  const startedAt = new Date().toISOString();
  try {
    for (const n of sizes) {
      for (const kind of kinds) {
        for (const [build, cli] of builds) {
          log(`bench:waiters: ${kind} N=${n} ${build}`);
          const r = await runCase(build, cli, kind, n, { redisUrl: redis.url, natsUrl: nats.url, monitorUrl: nats.monitorUrl! });
          rows.push(r);
          log(table([r]).split('\n')[2]!);
        }
      }
    }
  } finally {
    await Promise.all([redis.dispose(), nats.dispose()]);
  }
  const out = process.env.CS_BENCH_OUT ? path.resolve(process.env.CS_BENCH_OUT) : path.join(ROOT, 'bench/results');
  mkdirSync(out, { recursive: true });
  const file = path.join(out, `waiters-${startedAt.slice(0, 10)}.json`);
  writeFileSync(file, JSON.stringify({ startedAt, finishedAt: new Date().toISOString(), machine: { cpus: os.cpus().length, node: process.version }, before: before ?? null, rows }, null, 2) + '\n');
  process.stdout.write(`${table(rows)}\n\nresults: ${path.relative(ROOT, file)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:waiters: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
