import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from 'nats';
import { Redis } from 'ioredis';
import { runAgent } from '../src/agent/agent';
import { Output } from '../src/agent/output';
import type { AdmissionMode } from '../src/admission/settings';
import { connectNats } from '../src/bus/connect';
import { Subjects } from '../src/bus/subjects';
import { prepareClusters } from '../src/cluster/prepare';
import { ClusterStore } from '../src/cluster/store';
import { submitClusters } from '../src/cluster/submit';
import { createLogger } from '../src/core/logger';
import { QueueSet } from '../src/queue/queues';
import { startNats, startRedis } from '../src/services/local-servers';
import { startWorkers } from '../workers';
import { SleepRunner } from './lab-runner';

/**
 * `npm run bench:lab [-- --seed N --jobs N --machines N --testboxes N --timeout S --poll-ms MS --reserve-after S --out DIR]`
 *
 * A synthetic lab, run twice on the same throw-away Redis and NATS, once with
 * today's first-come-first-served hand-out (`--admission fifo`) and once with
 * admission: machines spread over testboxes (the last testbox's machines all
 * go away early, plus one more machine), a burst of 1-, 2- and 4-node
 * clusters with random run times (compressed: seconds stand for hours).
 * Prints machine-seconds held idle inside node jobs before `start`, makespan,
 * p50/p95 from submit to every node job handed out, and clusters ended by a
 * timeout, side by side; writes JSON under bench/results/.
 */

interface LabOptions {
  seed: number;
  jobs: number;
  machines: number;
  testboxes: number;
  timeoutS: number;
  pollMs: number;
  /** The workers' --reserve-after, s. */
  reserveAfterS: number;
  out: string;
}

function parse(argv: string[]): LabOptions {
  const o: LabOptions = { seed: 20, jobs: 300, machines: 40, testboxes: 12, timeoutS: 120, pollMs: 100, reserveAfterS: 5, out: path.resolve(__dirname, '../../bench/results') };
  for (let i = 0; i < argv.length; i++) {
    const [flag, v] = [argv[i], argv[i + 1]];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a positive number, got ${JSON.stringify(v)}`);
      i++;
      return n;
    };
    if (flag === '--lab') continue;
    else if (flag === '--seed') o.seed = num();
    else if (flag === '--jobs') o.jobs = num();
    else if (flag === '--machines') o.machines = num();
    else if (flag === '--testboxes') o.testboxes = num();
    else if (flag === '--timeout') o.timeoutS = num();
    else if (flag === '--poll-ms') o.pollMs = num();
    else if (flag === '--reserve-after') o.reserveAfterS = num();
    else if (flag === '--out' && v !== undefined) {
      o.out = path.resolve(v);
      i++;
    } else throw new Error(`unknown option ${flag} (known: --seed --jobs --machines --testboxes --timeout --poll-ms --reserve-after --out)`);
  }
  return o;
}

/** mulberry32: the same lab for both runs. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface LabJob {
  testboxes: string[];
  secs: number;
}

function makeLab(o: LabOptions): { machines: { id: string; tb: string }[]; jobs: LabJob[]; leaving: string[] } {
  const r = rng(o.seed);
  const tbs = Array.from({ length: o.testboxes }, (_, i) => `lab${i}`);
  const machines = Array.from({ length: o.machines }, (_, i) => ({ id: `m${i}`, tb: tbs[i % tbs.length] as string }));
  const jobs: LabJob[] = Array.from({ length: o.jobs }, () => {
    const x = r();
    const n = x < 0.5 ? 1 : x < 0.8 ? 2 : 4;
    const secs = Math.round((0.3 + r() * 2.7) * 10) / 10;
    return { testboxes: Array.from({ length: n }, () => tbs[Math.floor(r() * tbs.length)] as string), secs };
  });
  const last = tbs[tbs.length - 1] as string;
  const leaving = [...machines.filter((m) => m.tb === last).map((m) => m.id), 'm0'];
  return { machines, jobs, leaving };
}

export interface LabResult {
  mode: AdmissionMode;
  idleMachineSeconds: number;
  makespanS: number;
  p50AdmitS: number;
  p95AdmitS: number;
  finished: number;
  timedOut: number;
  notAdmitted: number;
  otherAborts: number;
  /** Per cluster, in submit order: did it pass? */
  passed: boolean[];
  /** Per cluster, in submit order: how it ended, why, and when its last node job was handed out (s from the start; absent: never). */
  ends: ClusterEnd[];
  /** Clusters that finished with FIFO but here ended by a timeout or not admitted (a missing or busy partner); filled in beside a FIFO run. */
  lostToTimeoutVsFifo?: number;
  /** Clusters that finished with FIFO but here aborted otherwise (a machine left mid-job); filled in beside a FIFO run. */
  lostOtherVsFifo?: number;
}

export type EndKind = 'finished' | 'timeout' | 'not_admitted' | 'other';

export interface ClusterEnd {
  kind: EndKind;
  reason: string;
  handedS?: number;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number);
};

async function runMode(mode: AdmissionMode, o: LabOptions, lab: ReturnType<typeof makeLab>, urls: { redis: string; nats: string }): Promise<LabResult> {
  const ns = `lab${mode}${Date.now() % 100000}`;
  const config = { redisUrl: urls.redis, natsUrl: urls.nats, subjectPrefix: ns, keyPrefix: `${ns}:` };
  const workers = await startWorkers(config, {
    sweepEveryMs: 250,
    logger: createLogger('lab', 'error'),
    admission: { admitTimeoutMs: o.timeoutS * 1000, reserveAfterMs: o.reserveAfterS * 1000 },
    dispatcher: { endGraceMs: 2000 },
  });
  const redis = new Redis(urls.redis, { maxRetriesPerRequest: null });
  const store = new ClusterStore(redis, { keyPrefix: config.keyPrefix });
  const queues = new QueueSet(redis, store.keys);
  const scripts = mkdtempSync(path.join(os.tmpdir(), 'cs-lab-'));
  mkdirSync(path.join(scripts, 'tests'));
  mkdirSync(path.join(scripts, 'daemon'));
  writeFileSync(path.join(scripts, 'tests/run'), '#!/bin/sh\n', { mode: 0o755 });
  const nc: NatsConnection = await connectNats(config, 'lab-agents');
  const subjects = new Subjects(ns);
  let idleMs = 0;
  const agents = lab.machines.map((m) => {
    const stop = new AbortController();
    const output = new Output((line) => {
      const e = JSON.parse(line) as { type: string; step?: string; waited_ms?: number };
      if (e.type === 'step' && e.step === 'wait_start') idleMs += e.waited_ms ?? 0;
    }, true);
    const done = runAgent(nc, subjects, {
      testbox: m.tb,
      scriptsRoot: scripts,
      output,
      ip: '127.0.0.1',
      pollMs: o.pollMs,
      signal: stop.signal,
      runner: new SleepRunner(),
      machineId: m.id,
      admission: mode,
      leaseMs: 3000,
    });
    return { ...m, stop, done };
  });
  const t0 = Date.now();
  const cids: string[] = [];
  for (const j of lab.jobs) {
    const hosts = j.testboxes.map((tb, i) => `  ${tb}--${i + 1}: { roles: [r${i}] }`).join('\n');
    const roles = j.testboxes.map((_, i) => `if role r${i}:\n  secs: ${j.secs}\n  run:`).join('\n');
    const [c] = await submitClusters(
      store,
      queues,
      prepareClusters(`suite: lab\ncluster: lab\ncluster_timeout: ${o.timeoutS}s\nadmit_timeout: ${o.timeoutS}s\n${roles}\n`, 'lab job', { inlineSpec: `nodes:\n${hosts}\n` }),
    );
    cids.push(c!.cluster);
  }
  const leave = setTimeout(() => {
    for (const a of agents) if (lab.leaving.includes(a.id)) a.stop.abort();
  }, 3000);
  let ended = 0;
  while (ended < cids.length && Date.now() - t0 < 20 * o.timeoutS * 1000) {
    await new Promise((r) => setTimeout(r, 250));
    ended = await redis.zcard(store.keys.endedClusters);
  }
  clearTimeout(leave);
  for (const a of agents) a.stop.abort();
  await Promise.all(agents.map((a) => a.done.catch(() => 0)));
  const admitS: number[] = [];
  let lastFinish = t0;
  const result: LabResult = { mode, idleMachineSeconds: idleMs / 1000, makespanS: 0, p50AdmitS: 0, p95AdmitS: 0, finished: 0, timedOut: 0, notAdmitted: 0, otherAborts: 0, passed: [], ends: [] };
  for (const cid of cids) {
    const view = await store.readCluster(cid);
    const reason = view.barriers.find((b) => b.result === 'abort')?.reason ?? '';
    result.passed.push(view.final === 'finish');
    let kind: EndKind = 'other';
    if (view.final === 'finish') {
      kind = 'finished';
      result.finished++;
      lastFinish = Math.max(lastFinish, view.barriers[2]?.at ?? t0);
    } else if (/^not admitted/.test(reason)) {
      kind = 'not_admitted';
      result.notAdmitted++;
    } else if (/timed out|no heartbeat/.test(reason)) {
      kind = 'timeout';
      result.timedOut++;
    } else result.otherAborts++;
    const where = await store.nodeQueues(cid);
    const jobs = await Promise.all(Object.entries(where).map(async ([job, q]) => queues.get(q).getJob(job)));
    // Handed out: moved to active for a machine (not by the reaper, to fail it: "before any machine took").
    const handed = jobs.map((j) => (j?.processedOn && !/before any machine took/.test(j.failedReason ?? '') ? j.processedOn : undefined));
    const all = handed.every((t) => typeof t === 'number');
    if (all) admitS.push((Math.max(...(handed as number[])) - view.created) / 1000);
    result.ends.push({ kind, reason, ...(all ? { handedS: (Math.max(...(handed as number[])) - t0) / 1000 } : {}) });
  }
  // Makespan: until the last cluster that passed ended (those that cannot run end at their timeout in either hand-out).
  result.makespanS = (lastFinish - t0) / 1000;
  result.p50AdmitS = pct(admitS, 50);
  result.p95AdmitS = pct(admitS, 95);
  await nc.drain();
  await queues.close();
  await redis.quit();
  await workers.close();
  return result;
}

export function formatLab(rows: LabResult[], o: LabOptions): string {
  const f = (n: number): string => (Number.isNaN(n) ? '-' : n.toFixed(1));
  const lines = [
    `lab: ${o.machines} machines on ${o.testboxes} testboxes, ${o.jobs} clusters (1/2/4 nodes), seed ${o.seed}, timeouts ${o.timeoutS}s, reserve after ${o.reserveAfterS}s, agents poll every ${o.pollMs} ms, one testbox's machines and one more leave 3 s after the last submit`,
    '| hand-out | idle machine-s before start | makespan s (last pass) | submit->handed p50 s | p95 s | finished | ended by barrier timeout / dead node | not admitted | other aborts | finished with FIFO, here timed out or not admitted | finished with FIFO, here aborted otherwise |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.mode} | ${f(r.idleMachineSeconds)} | ${f(r.makespanS)} | ${f(r.p50AdmitS)} | ${f(r.p95AdmitS)} | ${r.finished} | ${r.timedOut} | ${r.notAdmitted} | ${r.otherAborts} | ${r.lostToTimeoutVsFifo ?? '-'} | ${r.lostOtherVsFifo ?? '-'} |`,
    ),
  ];
  return lines.join('\n');
}

export async function labMain(argv: string[]): Promise<number> {
  const o = parse(argv);
  const lab = makeLab(o);
  const [redis, nats] = await Promise.all([startRedis(), startNats()]);
  try {
    const rows: LabResult[] = [];
    for (const mode of ['fifo', 'admission'] as const) {
      process.stderr.write(`lab: running ${mode}\n`);
      rows.push(await runMode(mode, o, lab, { redis: redis.url, nats: nats.url }));
    }
    const [fifo, adm] = rows;
    const lost: string[] = [];
    if (fifo && adm) {
      const ranWithFifo = (i: number): boolean => fifo.ends[i]?.kind === 'finished';
      adm.lostToTimeoutVsFifo = adm.ends.filter((e, i) => (e.kind === 'timeout' || e.kind === 'not_admitted') && ranWithFifo(i)).length;
      adm.lostOtherVsFifo = adm.ends.filter((e, i) => e.kind === 'other' && ranWithFifo(i)).length;
      adm.ends.forEach((e, i) => {
        if (e.kind === 'finished' || !ranWithFifo(i)) return;
        const fe = fifo.ends[i];
        lost.push(
          `cluster #${i} (${lab.jobs[i]?.testboxes.join(' + ')}, ${lab.jobs[i]?.secs} s): fifo handed it at ${fe?.handedS?.toFixed(1) ?? '-'} s and it finished; admission ${e.handedS === undefined ? 'never handed it' : `handed it at ${e.handedS.toFixed(1)} s`}: ${e.kind}: ${e.reason}`,
        );
      });
    }
    const table = formatLab(rows, o);
    process.stdout.write(`${table}\n`);
    if (lost.length > 0) process.stdout.write(`\nfinished with FIFO, not with admission:\n${lost.map((l) => `  ${l}`).join('\n')}\n`);
    mkdirSync(o.out, { recursive: true });
    writeFileSync(path.join(o.out, `lab-${new Date().toISOString().slice(0, 10)}.json`), JSON.stringify({ options: o, rows, table, lost }, null, 2));
    return 0;
  } finally {
    await Promise.all([redis.dispose(), nats.dispose()]);
  }
}

if (require.main === module) {
  labMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench:lab: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}
