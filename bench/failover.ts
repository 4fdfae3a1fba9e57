import { setTimeout as sleep } from 'node:timers/promises';
import { NodeClient } from '../src/client/node-client';
import type { ReportKind } from '../src/core/states';
import { watchSwitchMaster } from '../src/services/ha-servers';
import type { HaSet } from '../src/services/ha-servers';
import type { SubmittedCluster } from '../src/cluster/submit';
import { submitBenchClusters } from './clusters';
import type { Environment } from './environment';

/**
 * One failover of the Redis primary, measured: how long until a barrier is
 * answered again, and whether any report the workers had accepted is lost.
 *
 * A 2-node probe cluster is ready, and `load` 4-node clusters are living
 * their life (write_state, then the start, ready and finish barriers) when
 * the primary is SIGKILLed; at that instant both probe nodes wait at the
 * start barrier, and the time is that of their answer. Once every load node
 * has ended its life and the reports queue is empty, each report the
 * workers answered "accepted" is looked up in its cluster's fold records on
 * the promoted primary: one missing there is lost.
 */
export interface FailoverSample {
  /** Primary's death to the sentinels' +switch-master, ms. */
  switchMs: number;
  /** Primary's death to the first barrier answered again (the probe's start), ms. */
  barrierMs: number;
  /** Reports of the load the workers answered "accepted" (heartbeats aside). */
  accepted: number;
  /** Of those, not in their cluster's fold records afterwards. */
  lost: number;
  /** Load nodes whose life did not end with start, ready and finish answered. */
  unanswered: number;
  /** Load nodes with a barrier move folded more than once (an event per move is expected). */
  doubled: number;
}

/** A NodeClient that keeps the id of each report the workers accepted. */
class CountingClient extends NodeClient {
  private lastId = '';
  readonly accepted: string[] = [];

  override newReportId(kind: ReportKind): string {
    this.lastId = super.newReportId(kind);
    return this.lastId;
  }

  override async report(kind: ReportKind, extra: Parameters<NodeClient['report']>[1] = {}): Promise<void> {
    const sending = super.report(kind, extra); // takes its id synchronously
    const id = extra.id ?? this.lastId;
    await sending;
    if (kind !== 'heartbeat') this.accepted.push(id);
  }
}

const CLIENT = { requestTimeoutMs: 2000, maxBackoffMs: 100, giveUpAfterMs: 120_000 };
const MOVES = ['wait_start', 'wait_ready', 'finished'] as const;

async function life(node: NodeClient, i: number): Promise<string> {
  await node.report('write_state', { info: { ip: `10.9.${i}.1`, node_roles: i === 0 ? 'server' : 'client' } });
  const results: string[] = [];
  for (const kind of MOVES) results.push((await node.wait(kind)).result);
  return results.join(' ');
}

async function drained(env: Environment, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const counts = await env.queues.reports.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (Object.values(counts).every((v) => v === 0)) return;
    await sleep(100);
  }
  throw new Error(`the reports queue did not drain within ${timeoutMs} ms`);
}

/** Barrier moves folded more than once: more than one report event for a node's move. */
async function doubledNodes(env: Environment, cluster: SubmittedCluster): Promise<number> {
  const raw = await env.redis.xrange(env.store.keys.events(cluster.cluster), '-', '+');
  const seen = new Map<string, number>();
  for (const [, f] of raw) {
    const e = JSON.parse(f[1] ?? '{}') as { type?: string; job?: string; report?: string };
    if (e.type === 'report' && e.job && MOVES.includes(e.report as (typeof MOVES)[number])) seen.set(`${e.job} ${e.report}`, (seen.get(`${e.job} ${e.report}`) ?? 0) + 1);
  }
  const nodes = new Set([...seen].filter(([, n]) => n > 1).map(([k]) => k.split(' ')[0]));
  return nodes.size;
}

export async function measureFailover(set: HaSet, env: Environment, load: number): Promise<FailoverSample> {
  const [probe] = await submitBenchClusters(env, 1, 2);
  const loaded = load > 0 ? await submitBenchClusters(env, load, 4) : [];
  const client = (j: SubmittedCluster['jobs'][number]): CountingClient => new CountingClient(env.nodeConnection(), env.subjects, { cluster: j.cluster, job: j.job_id, token: j.token }, CLIENT);
  const probeNodes = probe!.jobs.map(client);
  const loadNodes = loaded.map((c) => c.jobs.map(client));
  const all = [...probeNodes, ...loadNodes.flat()];
  await Promise.all(all.map((n) => n.start()));
  const old = await set.primary();
  const watch = await watchSwitchMaster(set.sentinels[0]!.port, set.masterName);
  try {
    const lives = loadNodes.flatMap((nodes) => nodes.map((n, i) => life(n, i)));
    // Reports in flight everywhere when the primary dies: a quarter of the load nodes past write_state.
    const started = Date.now();
    const nodes = loadNodes.flat();
    while (nodes.filter((n) => n.accepted.length >= 1).length < nodes.length / 4 && Date.now() - started < 30_000) await sleep(5);
    const t0 = performance.now();
    process.kill(old.pid, 'SIGKILL');
    const switched = watch.next.then(() => performance.now() - t0);
    const answers = await Promise.all(probeNodes.map((n) => n.wait('wait_start')));
    const barrierMs = performance.now() - t0;
    if (answers.some((a) => a.result !== 'start')) throw new Error(`the probe's barrier was answered ${answers.map((a) => a.result).join(', ')}`);
    const switchMs = await switched;
    const ended = await Promise.allSettled(lives);
    const unanswered = ended.filter((r) => r.status !== 'fulfilled' || r.value !== 'start ready finish').length;
    await drained(env, 120_000);
    let accepted = 0;
    let lost = 0;
    let doubled = 0;
    for (const [k, c] of loaded.entries()) {
      const folded = new Set(await env.store.foldedReportIds(c.cluster));
      for (const n of loadNodes[k] ?? []) {
        accepted += n.accepted.length;
        lost += n.accepted.filter((id) => !folded.has(id)).length;
      }
      doubled += await doubledNodes(env, c);
    }
    return { switchMs, barrierMs, accepted, lost, unanswered, doubled };
  } finally {
    watch.close();
    await Promise.all(all.map((n) => n.close()));
    await old.restart();
    await set.ready(180_000);
  }
}
