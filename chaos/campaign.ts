import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { decodeText } from '../src/bus/connect';
import { Subjects } from '../src/bus/subjects';
import { prepareClusters } from '../src/cluster/prepare';
import { ClusterStore } from '../src/cluster/store';
import { submitClusters } from '../src/cluster/submit';
import { errorMessage } from '../src/core/errors';
import { QueueSet, REPORTS_QUEUE, testboxQueueName } from '../src/queue/queues';
import type { NodeJob } from '../src/split/node-job';
import { checkRound } from './checker';
import type { ClusterUnderCheck, Violation } from './checker';
import { API_TOKEN, ChaosEnv, sleep } from './env';
import { History, formatLine } from './history';
import { RecordingClient, clientLife, legacyLife } from './nodes';
import { FAULT_KINDS, planRound } from './plan';
import type { ClusterPlan, FaultKind, FaultPlan, RoundPlan } from './plan';
import { foldedReportIds, readRecord } from './records';

/**
 * `npm run chaos`: rounds of seeded workload and faults against a real
 * Redis, NATS, workers and scheduler, each round checked by checker.ts.
 */
export interface CampaignOptions {
  seed: number;
  rounds: number;
  /** The first round to run (each round's schedule depends only on the seed and its number). Default 0. */
  fromRound?: number;
  /** Stop starting rounds after this many minutes. */
  minutes?: number;
  /** Worker processes (2 or 3); default drawn from the seed. */
  workers?: number;
  maxClusters?: number;
  maxFaults?: number;
  faultKinds?: readonly FaultKind[];
  boundMs?: number;
  recoveryMs?: number;
  log?: (line: string) => void;
}

export interface RoundViolation extends Violation {
  round: number;
}

export interface CampaignResult {
  seed: number;
  rounds: number;
  clusters: number;
  nodes: number;
  faults: Record<string, number>;
  reportsChecked: number;
  violations: RoundViolation[];
  ms: number;
}

const HEARTBEAT_MS = 500;
const TIMEOUT_MS = 6000;
const SWEEP_MS = 1000;
/** A round that has not ended after this is a liveness failure in itself. */
const ROUND_LIMIT_MS = 90_000;

function jobText(): string {
  return `suite: chaos\ncluster: cs-chaos\ncluster_timeout: ${TIMEOUT_MS / 1000}\nif role server:\n  srv:\nif role client:\n  cli:\n`;
}

function specText(c: ClusterPlan, name: string): string {
  const hosts = c.nodes.map((n, i) => `  ${name}-${i}--1: { roles: [${n.roles.split(' ').join(', ')}] }`).join('\n');
  return `nodes:\n${hosts}\n`;
}

export function describeViolation(seed: number, v: RoundViolation): string {
  return [`VIOLATION seed=${seed} round=${v.round} (replay: npm run chaos -- --seed ${seed} --from-round ${v.round} --rounds 1) [${v.invariant}]${v.cluster ? ` cluster ${v.cluster}` : ''}: ${v.message}`, ...v.lines.map((l) => `    ${formatLine(l)}`)].join('\n');
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const log = options.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const seed = options.seed >>> 0;
  const workers = options.workers ?? 2 + (seed % 2);
  const planOptions = { maxClusters: options.maxClusters ?? 8, maxFaults: options.maxFaults ?? 2, faultKinds: options.faultKinds ?? FAULT_KINDS };
  const check = { boundMs: options.boundMs ?? 1000, recoveryMs: options.recoveryMs ?? 20_000, heartbeatMs: HEARTBEAT_MS, timeoutMs: TIMEOUT_MS, sweepMs: SWEEP_MS };
  const result: CampaignResult = { seed, rounds: 0, clusters: 0, nodes: 0, faults: {}, reportsChecked: 0, violations: [], ms: 0 };
  const t0 = Date.now();
  const stopAt = options.minutes === undefined ? Number.POSITIVE_INFINITY : t0 + options.minutes * 60_000;
  const env = new ChaosEnv(workers);
  let redis: Redis | undefined;
  let nc: NatsConnection | undefined;
  let queues: QueueSet | undefined;
  try {
    await env.start();
    log(`chaos: seed ${seed}, ${workers} workers, Redis ${env.redis.url} (appendfsync always), NATS ${env.nats.url}, scheduler ${env.schedulerUrl}`);
    redis = new Redis(env.config.redisUrl, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined); // Redis restarts are part of the run
    const store = new ClusterStore(redis);
    queues = new QueueSet(redis, store.keys);
    nc = await connect({ servers: env.config.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const rctx: RoundContext = { env, store, queues, nc, subjects: new Subjects('cs'), check, result, known: new Set<string>(), log };
    const first = options.fromRound ?? 0;
    for (let round = first; round < first + options.rounds && Date.now() < stopAt; round++) {
      const plan = planRound(seed, round, planOptions);
      const r = await runRound(plan, rctx);
      result.rounds++;
      const deaths = env.deaths.splice(0);
      for (const d of deaths) r.push({ round, invariant: 'integrity', message: `a process died that was not killed: ${d}`, lines: [] });
      for (const v of r) log(describeViolation(seed, v));
      result.violations.push(...r);
      log(`round ${round}: ${plan.clusters.length} clusters, ${plan.clusters.reduce((a, c) => a + c.nodes.length, 0)} nodes, faults [${plan.faults.map((f) => f.kind).join(', ')}], ${r.length} violations`);
    }
  } finally {
    await nc?.close().catch(() => undefined);
    await queues?.close().catch(() => undefined);
    await redis?.quit().catch(() => redis?.disconnect());
    await env.stop();
  }
  result.ms = Date.now() - t0;
  return result;
}

interface RoundContext {
  env: ChaosEnv;
  store: ClusterStore;
  queues: QueueSet;
  nc: NatsConnection;
  subjects: Subjects;
  check: { boundMs: number; recoveryMs: number; heartbeatMs: number; timeoutMs: number; sweepMs: number };
  result: CampaignResult;
  /** Cluster ids already checked for integrity. */
  known: Set<string>;
  log: (line: string) => void;
  /** When the last fault of an earlier round ended, epoch ms. */
  lastFaultEnd?: number;
}

function count(result: CampaignResult, kind: string, n = 1): void {
  result.faults[kind] = (result.faults[kind] ?? 0) + n;
}

async function runRound(plan: RoundPlan, ctx: RoundContext): Promise<RoundViolation[]> {
  const { env, store, queues, nc, subjects, result } = ctx;
  const history = new History();
  const t0 = Date.now();
  const deadline = t0 + ROUND_LIMIT_MS;
  const observer = nc.subscribe(`${subjects.prefix}.cluster.*.barrier`, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const a = JSON.parse(decodeText(msg.data)) as { cluster: string; barrier: string; result: string };
        history.add({ kind: 'broadcast', cluster: a.cluster, barrier: a.barrier, result: a.result });
      } catch {
        /* not an answer */
      }
    },
  });
  const submitted: { cid: string; jobs: NodeJob[]; plan: ClusterPlan }[] = [];
  const clients: RecordingClient[] = [];
  const lives: Promise<void>[] = [];
  const ended = (cid: string) => async (): Promise<void> => {
    while (Date.now() < deadline) {
      const final = await store.redis.hget(store.keys.meta(cid), 'final').catch(() => null);
      if (final) return;
      await sleep(250);
    }
  };

  const submitting = plan.clusters.map(async (c, k) => {
    await sleep(c.submitMs);
    try {
      const prepared = prepareClusters(jobText(), 'chaos job', { inlineSpec: specText(c, `r${plan.round}c${k}`), heartbeatIntervalMs: HEARTBEAT_MS });
      const [sc] = await submitClusters(store, queues, prepared);
      if (!sc) return;
      submitted.push({ cid: sc.cluster, jobs: sc.jobs, plan: c });
      history.add({ kind: 'submit', cluster: sc.cluster, detail: sc.jobs.map((j, i) => `${j.job_id}:${c.nodes[i]?.behaviour}${c.nodes[i]?.behaviour === 'pass' ? '' : `@${c.nodes[i]?.at}`}${c.nodes[i]?.legacy ? ':legacy' : ''}`).join(' ') });
      result.clusters++;
      result.nodes += sc.jobs.length;
      for (const [i, j] of sc.jobs.entries()) {
        const np = c.nodes[i]!;
        const nctx = { history, heartbeatMs: HEARTBEAT_MS, ended: ended(sc.cluster) };
        if (np.legacy) {
          lives.push(legacyLife(() => env.schedulerUrl, j.job_id, sc.cluster, np, i, nctx));
        } else {
          const client = new RecordingClient(nc, subjects, { cluster: sc.cluster, job: j.job_id, token: j.token }, history);
          await client.start();
          clients.push(client);
          lives.push(clientLife(client, np, i, nctx));
        }
        if (np.duplicate) count(result, 'duplicate report');
        if (np.reorder) count(result, 'reordered report');
        if (np.late) count(result, 'late report');
      }
    } catch (err) {
      history.add({ kind: 'note', detail: `submit failed: ${errorMessage(err)}` });
    }
  });

  const faulting = (async () => {
    for (const f of plan.faults) {
      const wait = t0 + f.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      await inject(f, ctx, history, clients);
    }
  })();

  await Promise.all([...submitting, faulting]);
  let limit: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(lives), new Promise<void>((resolve) => (limit = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
  clearTimeout(limit);
  for (const s of submitted) await ended(s.cid)();
  // Every accepted report folded before the records are read.
  const reports = new Queue(REPORTS_QUEUE, { connection: store.redis, prefix: store.keys.bullPrefix });
  reports.on('error', () => undefined);
  for (let i = 0; i < 300; i++) {
    const counts = await reports.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (Object.values(counts).every((n) => n === 0)) break;
    await sleep(100);
  }
  await reports.close();
  observer.unsubscribe();
  await Promise.all(clients.map((c) => c.close()));

  const folded = await foldedReportIds(store, submitted.map((x) => x.cid));
  const under: ClusterUnderCheck[] = [];
  for (const s of submitted) {
    ctx.known.add(s.cid);
    under.push({ record: await readRecord(store, s.cid, s.jobs.map((j) => j.job_id), folded), plan: s.plan });
  }
  for (const l of history.lines) if (l.kind === 'note') ctx.log(`round ${plan.round}: ${formatLine(l)}`);
  const { violations, reportsChecked } = checkRound(history.lines, under, { ...ctx.check, t0: history.t0, priorFaultEnd: ctx.lastFaultEnd });
  const healed = history.lines.filter((l) => l.kind === 'healed' || l.kind === 'pause');
  if (healed.length > 0) ctx.lastFaultEnd = history.t0 + Math.max(...healed.map((l) => l.t));
  result.reportsChecked += reportsChecked;
  const out: RoundViolation[] = violations.map((v) => ({ ...v, round: plan.round }));
  out.push(...(await wholeOrAbsent(store, queues, ctx.known)).map((message) => ({ round: plan.round, invariant: 'integrity' as const, message, lines: history.lines.filter((l) => l.kind === 'fault' || l.kind === 'healed') })));
  return out;
}

/** Integrity: every cluster in Redis that the harness did not submit itself (the scheduler's) is whole: meta, ids and node jobs all there. */
async function wholeOrAbsent(store: ClusterStore, queues: QueueSet, known: Set<string>): Promise<string[]> {
  const out: string[] = [];
  const all = await store.redis.hkeys(store.keys.clusterState);
  for (const cid of all) {
    if (known.has(cid)) continue;
    known.add(cid);
    const view = await store.readCluster(cid).catch(() => undefined);
    const token = await store.token(cid);
    if (!view || !token) {
      out.push(`cluster ${cid} is half there: state ${view ? 'present' : 'missing'}, meta ${token ? 'present' : 'missing'}`);
      continue;
    }
    for (const n of view.nodes) {
      const owner = await store.clusterOfJob(n.job);
      const job = await queues.get(testboxQueueName('chaos-sched')).getJob(n.job);
      if (owner !== cid || !job) out.push(`cluster ${cid} is half there: node ${n.job} ${owner !== cid ? 'has no id map entry' : 'has no node job queued'}`);
    }
  }
  return out;
}

async function inject(f: FaultPlan, ctx: RoundContext, history: History, clients: RecordingClient[]): Promise<void> {
  const { env } = ctx;
  const detail = `target ${f.target}`;
  switch (f.kind) {
    case 'client-pause': {
      const c = clients[f.target % Math.max(1, clients.length)];
      if (!c) return;
      history.add({ kind: 'pause', cluster: c.id.cluster, job: c.id.job, detail: `${f.durationMs} ms` });
      c.pausedUntil = Date.now() + f.durationMs;
      break;
    }
    case 'scheduler-kill-submit':
      history.add({ kind: 'fault', what: f.kind, detail });
      await killMidSubmit(env, f.target % 40, history);
      history.add({ kind: 'healed', what: f.kind, detail });
      break;
    default:
      history.add({ kind: 'fault', what: f.kind, detail });
      try {
        if (f.kind === 'worker-kill') await env.killWorker(f.target);
        else if (f.kind === 'worker-stop') await env.pauseWorker(f.target, f.durationMs);
        else if (f.kind === 'nats-restart') await env.restartNats();
        else if (f.kind === 'redis-restart') await env.restartRedis();
        else if (f.kind === 'redis-oom') await env.redisOutOfMemory(f.durationMs);
      } catch (err) {
        history.add({ kind: 'note', detail: `${f.kind} failed: ${errorMessage(err)}` });
      }
      history.add({ kind: 'healed', what: f.kind, detail });
  }
  count(ctx.result, f.kind);
}

/** POST a two-node job to the scheduler and SIGKILL it `afterMs` later; start it again. */
async function killMidSubmit(env: ChaosEnv, afterMs: number, history: History): Promise<void> {
  const body = JSON.stringify({
    job: `suite: chaos\ncluster: cs-chaos\ncluster_timeout: ${TIMEOUT_MS / 1000}\nif role server:\n  srv:\nif role client:\n  cli:\n`,
    cluster_spec: 'nodes:\n  chaos-sched--1: { roles: [server] }\n  chaos-sched--2: { roles: [client] }\n',
  });
  const posting = fetch(`${env.schedulerUrl}/jobs`, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${API_TOKEN}` } })
    .then(async (r) => history.add({ kind: 'note', detail: `submit to the scheduler answered ${r.status}: ${(await r.text()).slice(0, 120)}` }))
    .catch((err: unknown) => history.add({ kind: 'note', detail: `submit to the scheduler failed: ${errorMessage(err)}` }));
  await sleep(afterMs);
  await env.killScheduler();
  await posting;
}
