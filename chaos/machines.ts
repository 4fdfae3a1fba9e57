import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { NatsConnection } from 'nats';
import { runAgent } from '../src/agent/agent';
import { Output } from '../src/agent/output';
import { connectNats } from '../src/bus/connect';
import { Subjects } from '../src/bus/subjects';
import { prepareClusters } from '../src/cluster/prepare';
import { ClusterStore } from '../src/cluster/store';
import { submitClusters } from '../src/cluster/submit';
import { QueueSet } from '../src/queue/queues';
import { startNats, startRedis } from '../src/services/local-servers';
import { SleepRunner } from '../bench/lab-runner';
import { Prng } from './prng';

/**
 * `npm run chaos:machines -- --seed S --rounds N`: admission under faults.
 * Each round: two `cluster-sync worker` processes, machines (admission
 * agents) on three testboxes that come and go, die (their NATS connection cut:
 * no goodbye, no heartbeat) or stay, workers paused (SIGSTOP) or killed and
 * restarted, and a burst of 1- to 3-node clusters with short admit timeouts.
 * Checked at the end of the round:
 *  - no machine ran two node jobs at once (from every agent's own steps);
 *  - no cluster partly admitted (an admitted cluster assigns every node job);
 *  - every cluster admitted, or ended (by its admit timeout or otherwise);
 *  - no node job of an ended cluster handed out after its end;
 *  - no machine reserved for, or assigned an untaken job of, an ended cluster.
 */

const CLI = path.resolve(__dirname, '../src/cli/main.js');
const TBS = ['ca', 'cb', 'cc'];

interface Machine {
  id: string;
  tb: string;
  nc?: NatsConnection;
  stop?: AbortController;
  done?: Promise<number>;
  runs: { job: string; from: number; to?: number }[];
}

function worker(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const p = spawn(process.execPath, [CLI, 'worker', '--admit-timeout', '6s', '--reserve-after', '1s', '--lock-ms', '4000', '--end-grace', '2s'], {
    env: { ...env, CS_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('workers ready')) resolve(p);
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
    p.once('exit', (c) => reject(new Error(`worker exited ${c}: ${out}`)));
  });
}

export async function runMachineChaos(seed: number, rounds: number, log: (l: string) => void): Promise<string[]> {
  const [redisServer, natsServer] = await Promise.all([startRedis(), startNats()]);
  const violations: string[] = [];
  const scripts = mkdtempSync(path.join(os.tmpdir(), 'cs-chaos-m-'));
  mkdirSync(path.join(scripts, 'tests'));
  mkdirSync(path.join(scripts, 'daemon'));
  writeFileSync(path.join(scripts, 'tests/run'), '#!/bin/sh\n', { mode: 0o755 });
  try {
    for (let round = 0; round < rounds; round++) {
      const rnd = new Prng(seed * 1000 + round);
      const ns = `cm${seed}r${round}`;
      const config = { redisUrl: redisServer.url, natsUrl: natsServer.url, subjectPrefix: ns, keyPrefix: `${ns}:` };
      const env = { ...process.env, CS_REDIS_URL: config.redisUrl, CS_NATS_URL: config.natsUrl, CS_SUBJECT_PREFIX: ns, CS_KEY_PREFIX: config.keyPrefix, CS_LOG_LEVEL: 'warn' };
      const workers = await Promise.all([worker(env), worker(env)]);
      const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
      const store = new ClusterStore(redis, { keyPrefix: config.keyPrefix });
      const queues = new QueueSet(redis, store.keys);
      const machines: Machine[] = Array.from({ length: 7 }, (_, i) => ({ id: `m${i}`, tb: TBS[i % 3] as string, runs: [] }));
      const startMachine = async (m: Machine): Promise<void> => {
        m.nc = await connectNats(config, `chaos-${m.id}`);
        m.stop = new AbortController();
        const output = new Output((line) => {
          const e = JSON.parse(line) as { type: string; step?: string; job?: string };
          if (e.type !== 'step' || !e.job) return;
          if (e.step === 'write_state') m.runs.push({ job: e.job, from: Date.now() });
          if (e.step === 'end') {
            const r = m.runs.find((x) => x.job === e.job && x.to === undefined);
            if (r) r.to = Date.now();
          }
        }, true);
        m.done = runAgent(m.nc, new Subjects(ns), {
          testbox: m.tb,
          scriptsRoot: scripts,
          output,
          ip: '127.0.0.1',
          pollMs: 100,
          signal: m.stop.signal,
          runner: new SleepRunner(),
          machineId: m.id,
          leaseMs: 2000,
          requestTimeoutMs: 1500,
        });
      };
      for (const m of machines) if (rnd.next() < 0.8) await startMachine(m);
      const cids: string[] = [];
      const clusters = rnd.int(6, 12);
      for (let c = 0; c < clusters; c++) {
        const n = rnd.int(1, 3);
        const tbs = Array.from({ length: n }, () => TBS[rnd.int(0, 2)] as string);
        const hosts = tbs.map((tb, i) => `  ${tb}--${i + 1}: { roles: [r${i}] }`).join('\n');
        const roles = tbs.map((_, i) => `if role r${i}:\n  secs: ${(rnd.int(1, 15) / 10).toFixed(1)}\n  run:`).join('\n');
        const [sc] = await submitClusters(
          store,
          queues,
          prepareClusters(`suite: chaos\ncluster: chaos\ncluster_timeout: 20s\n${roles}\n`, 'chaos job', { inlineSpec: `nodes:\n${hosts}\n`, heartbeatIntervalMs: 500 }),
        );
        cids.push(sc!.cluster);
      }
      const faults: string[] = [];
      for (let step = 0; step < 8; step++) {
        await new Promise((r) => setTimeout(r, 500 + rnd.int(0, 700)));
        const m = machines[rnd.int(0, machines.length - 1)] as Machine;
        const what = rnd.int(0, 5);
        if (what === 0 && m.stop) {
          faults.push(`${m.id} leaves`);
          m.stop.abort();
          await m.done;
          await m.nc?.close();
          m.stop = undefined;
        } else if (what === 1 && m.nc && m.stop) {
          faults.push(`${m.id} dies`);
          await m.nc.close().catch(() => undefined);
          // A dead machine runs nothing more, whatever its in-process agent still unwinds.
          for (const r of m.runs) r.to ??= Date.now();
          m.stop.abort();
          m.stop = undefined;
        } else if (what === 2 && !m.stop) {
          faults.push(`${m.id} comes`);
          await startMachine(m);
        } else if (what === 3) {
          const w = workers[rnd.int(0, 1)] as ChildProcess;
          faults.push(`worker ${w.pid} paused 1.5s`);
          w.kill('SIGSTOP');
          setTimeout(() => w.kill('SIGCONT'), 1500);
        } else if (what === 4) {
          const i = rnd.int(0, 1);
          faults.push(`worker ${workers[i]?.pid} killed`);
          workers[i]?.kill('SIGKILL');
          workers[i] = await worker(env);
        }
      }
      // Quiesce: every cluster ends (admit timeout 6 s, cluster_timeout 20 s, dead nodes) or is admitted.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const metas = await Promise.all(cids.map((cid) => redis.hmget(store.keys.meta(cid), 'final', 'admitted')));
        if (metas.every(([f]) => f) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 300));
      }
      await new Promise((r) => setTimeout(r, 1500)); // the reaper's sweep after the last end
      const bad = (what: string): void => void violations.push(`seed ${seed} round ${round}: ${what} (faults: ${faults.join(', ')})`);
      for (const m of machines) {
        const runs = [...m.runs].sort((a, b) => a.from - b.from);
        for (let i = 1; i < runs.length; i++) if ((runs[i - 1]?.to ?? Infinity) > (runs[i]?.from ?? 0)) bad(`machine ${m.id} ran ${runs[i - 1]?.job} and ${runs[i]?.job} at once`);
      }
      const records = (await redis.hvals(store.keys.machines)).map((v) => JSON.parse(v) as { id: string; state: string; cluster?: string; taken?: boolean; reserved_for?: string });
      for (const cid of cids) {
        const [final, admitted, assign] = await redis.hmget(store.keys.meta(cid), 'final', 'admitted', 'assign');
        const where = await store.nodeQueues(cid);
        if (!final && !admitted) bad(`cluster ${cid} neither admitted nor ended`);
        if (
          assign &&
          Object.keys(JSON.parse(assign) as object)
            .sort()
            .join() !== Object.keys(where).sort().join()
        )
          bad(`cluster ${cid} partly admitted: ${assign}`);
        const endedAt = Number(await redis.zscore(store.keys.endedClusters, cid));
        for (const [job, q] of Object.entries(where)) {
          const j = await queues.get(q).getJob(job);
          if (final && j?.processedOn && endedAt && j.processedOn > endedAt && !/before any machine took/.test(j.failedReason ?? ''))
            bad(`node job ${job} handed out ${j.processedOn - endedAt} ms after its cluster ${cid} ended`);
          if (final && (await j?.getState()) === 'waiting') bad(`node job ${job} of ended cluster ${cid} still queued`);
        }
        if (final)
          for (const r of records)
            if ((r.state === 'reserved' && r.reserved_for === cid) || (r.state === 'running' && r.cluster === cid && !r.taken)) bad(`machine ${r.id} still ${r.state} for ended cluster ${cid}`);
      }
      log(`round ${round}: ${cids.length} clusters, faults: ${faults.join(', ') || 'none'}; violations so far ${violations.length}`);
      for (const m of machines) {
        m.stop?.abort();
        await m.done?.catch(() => 0);
        await m.nc?.close().catch(() => undefined);
      }
      await queues.close();
      await redis.quit();
      for (const w of workers) w.kill('SIGKILL');
    }
  } finally {
    await Promise.all([redisServer.dispose(), natsServer.dispose()]);
  }
  return violations;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const get = (flag: string, dflt: number): number => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const seed = get('--seed', 1);
  const rounds = get('--rounds', 5);
  runMachineChaos(seed, rounds, (l) => process.stderr.write(`${l}\n`)).then(
    (v) => {
      process.stdout.write(`chaos:machines seed ${seed}, ${rounds} rounds: ${v.length} violations\n${v.join('\n')}\n`);
      process.exit(v.length > 0 ? 1 : 0);
    },
    (err: unknown) => {
      process.stderr.write(`chaos:machines: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(2);
    },
  );
}
