import type { Redis } from 'ioredis';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { decodeText } from '../src/bus/connect';
import { Subjects } from '../src/bus/subjects';
import { prepareClusters } from '../src/cluster/prepare';
import { ClusterStore } from '../src/cluster/store';
import { submitClusters } from '../src/cluster/submit';
import { errorMessage } from '../src/core/errors';
import { connectRedis } from '../src/core/redis';
import { ReplicationGuard, replicationOf } from '../src/core/replication';
import { QueueSet } from '../src/queue/queues';
import { checkPending, checkRound, wholeOrAbsent } from './checker';
import type { ClusterUnderCheck } from './checker';
import { ChaosEnv, sleep, within } from './env';
import { History, formatLine } from './history';
import { legacyLife, takerLife } from './nodes';
import type { RecordingClient } from './nodes';
import { inject } from './faults';
import { FAULT_KINDS, HA_FAULT_KINDS, planRound } from './plan';
import type { ClusterPlan, FaultKind, MachinesPlan, RoundPlan } from './plan';
import { MachineLab } from './machine-lab';
import { AdmissionSampler } from './admission-snapshot';
import { checkReleased } from './admission-check';
import { leftovers } from './records';
import { HEARTBEAT_MS, ROUND_LIMIT_MS, SWEEP_MS, TIMEOUT_MS, countFault } from './round';
import type { CampaignResult, RoundContext, RoundViolation, Submitted } from './round';
import { settle } from './settle';

export type { CampaignResult, RoundViolation } from './round';

/**
 * `npm run chaos`: rounds of seeded workload and faults against a real
 * Redis, NATS, workers and scheduler, each round checked by checker.ts.
 * The faults are injected by faults.ts; each cluster's records are read by
 * settle.ts once it settled; the servers are read only through the store.
 */
export interface CampaignOptions {
  seed: number;
  rounds: number;
  /** Against a NATS cluster of three and Redis behind Sentinel (primary, 2 replicas, 3 sentinels). Default false. */
  ha?: boolean;
  /** The first round to run (each round's schedule depends only on the seed and its number). Default 0. */
  fromRound?: number;
  /** Stop starting rounds after this many minutes. */
  minutes?: number;
  /** Worker processes (2 or 3); default drawn from the seed. */
  workers?: number;
  maxClusters?: number;
  maxFaults?: number;
  /** Clusters per round that run on machines (admission agents that come, leave and die), at most; 0: none. Default 5. */
  maxMachineClusters?: number;
  faultKinds?: readonly FaultKind[];
  boundMs?: number;
  recoveryMs?: number;
  /** The workers' `--retention`, ms: an ended cluster must be gone this long after it ended. Default 8000. */
  retentionMs?: number;
  /** The workers' `--end-grace`, ms: a node job whose node never said done is failed this long after its cluster ended. Default 3000. */
  endGraceMs?: number;
  log?: (line: string) => void;
  /** Once aborted, no further round is started; the campaign checks what it ran and stops its servers. */
  signal?: AbortSignal;
  /**
   * Errors of the campaign process itself seen outside any check (main.ts puts its unhandled promise
   * rejections here): each is an integrity violation of the round that was running.
   */
  harnessErrors?: string[];
  /** Where each worker's and the scheduler's whole output is written, one file per process. Default: only their last lines are kept. */
  logDir?: string;
}

function jobText(c: ClusterPlan, machines: MachinesPlan | undefined): string {
  const admit = c.machineTestboxes && machines ? `admit_timeout: ${machines.admitTimeoutMs}ms\n` : '';
  return `suite: chaos\ncluster: cs-chaos\ncluster_timeout: ${TIMEOUT_MS / 1000}\n${admit}if role server:\n  srv:\nif role client:\n  cli:\n`;
}

/** Each node its own testbox (`name-i`), or, for a machine cluster, the round's machine testbox it needs. */
function specText(c: ClusterPlan, name: string, machines: MachinesPlan | undefined): string {
  const host = (i: number): string => {
    const tb = c.machineTestboxes?.[i];
    return tb !== undefined && machines ? `${machines.testboxes[tb]}--${i + 1}` : `${name}-${i}--1`;
  };
  const hosts = c.nodes.map((n, i) => `  ${host(i)}: { roles: [${n.roles.split(' ').join(', ')}] }`).join('\n');
  return `nodes:\n${hosts}\n`;
}

export function describeViolation(seed: number, v: RoundViolation): string {
  return [
    `VIOLATION seed=${seed} round=${v.round} (replay: npm run chaos -- --seed ${seed} --from-round ${v.round} --rounds 1) [${v.invariant}]${v.cluster ? ` cluster ${v.cluster}` : ''}: ${v.message}`,
    ...v.lines.map((l) => `    ${formatLine(l)}`),
  ].join('\n');
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const log = options.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const seed = options.seed >>> 0;
  const workers = options.workers ?? 2 + (seed % 2);
  const planOptions = {
    maxClusters: options.maxClusters ?? 8,
    maxFaults: options.maxFaults ?? 2,
    faultKinds: options.faultKinds ?? (options.ha ? HA_FAULT_KINDS : FAULT_KINDS),
    maxMachineClusters: options.maxMachineClusters ?? 5,
  };
  const check = { boundMs: options.boundMs ?? 1000, recoveryMs: options.recoveryMs ?? 20_000, heartbeatMs: HEARTBEAT_MS, timeoutMs: TIMEOUT_MS, sweepMs: SWEEP_MS };
  const result: CampaignResult = {
    seed,
    rounds: 0,
    clusters: 0,
    nodes: 0,
    faults: {},
    reportsChecked: 0,
    recordsChecked: 0,
    retentionChecked: 0,
    tracesBefore: 0,
    snapshotsChecked: 0,
    machineClusters: { total: 0, admitted: 0, notAdmitted: 0 },
    violations: [],
    ms: 0,
    failoverMs: [],
  };
  const t0 = Date.now();
  const stopAt = options.minutes === undefined ? Number.POSITIVE_INFINITY : t0 + options.minutes * 60_000;
  const retentionMs = options.retentionMs ?? 8000;
  const endGraceMs = options.endGraceMs ?? 3000;
  if (retentionMs <= endGraceMs + 2000)
    throw new Error(`--retention-ms (${retentionMs}) must exceed --end-grace-ms (${endGraceMs}) by over 2 s: node job records are read after the end grace, before retention removes them`);
  // With --ha a submit may wait out a failover (seconds): the reaper must not take it for a dead submitter meanwhile.
  const env = new ChaosEnv(workers, retentionMs, endGraceMs, options.ha ? 10_000 : undefined, options.ha ?? false, options.logDir);
  let redis: Redis | undefined;
  let nc: NatsConnection | undefined;
  let queues: QueueSet | undefined;
  let rctx: RoundContext | undefined;
  try {
    await env.start();
    log(
      `chaos: seed ${seed}, ${workers} workers (retention ${retentionMs} ms, end grace ${endGraceMs} ms), ${env.ha ? `Redis primary "${env.ha.masterName}" via sentinels ${env.ha.sentinelList} (2 replicas), NATS cluster ${env.config.natsUrl}` : `Redis ${env.redis.url} (appendfsync always), NATS ${env.nats.url}`}, scheduler ${env.schedulerUrl}`,
    );
    redis = connectRedis(env.config, 'cs-chaos');
    redis.on('error', () => undefined); // Redis restarts are part of the run
    const store = new ClusterStore(redis);
    queues = new QueueSet(redis, store.keys);
    nc = await connect({ servers: env.config.natsUrl.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    rctx = {
      env,
      store,
      queues,
      replication: new ReplicationGuard(replicationOf(env.config)),
      nc,
      subjects: new Subjects('cs'),
      check,
      result,
      known: new Set<string>(),
      log,
      retention: { retentionMs, sweepMs: SWEEP_MS, recoveryMs: check.recoveryMs },
      endGraceMs,
      pending: [],
      unwinding: [],
    };
    const first = options.fromRound ?? 0;
    for (let round = first; round < first + options.rounds && Date.now() < stopAt && !options.signal?.aborted; round++) {
      const plan = planRound(seed, round, planOptions);
      const r = await runRound(plan, rctx);
      result.rounds++;
      const deaths = env.deaths.splice(0);
      for (const d of deaths) r.push({ round, invariant: 'integrity', message: `a process died that was not killed: ${d}`, lines: [] });
      for (const e of options.harnessErrors?.splice(0) ?? []) r.push({ round, invariant: 'integrity', message: `the campaign process met an unhandled error: ${e}`, lines: [] });
      r.push(...(await checkPending(rctx, false)));
      for (const v of r) log(describeViolation(seed, v));
      for (const line of workerLinesAbout(env, r)) log(line);
      for (const line of await batchJobsAbout(queues, r)) log(line);
      result.violations.push(...r);
      log(
        `round ${round}: ${plan.clusters.length} clusters, ${plan.clusters.reduce((a, c) => a + c.nodes.length, 0)} nodes, faults [${plan.faults.map((f) => f.kind).join(', ')}]${plan.machines ? `, ${plan.clusters.filter((c) => c.machineTestboxes).length} on ${plan.machines.machines.length} machines (${plan.machines.machines.map((m) => `${m.id}:${m.events.map((e) => `${e.kind}@${e.atMs}`).join('/')}`).join(' ')})` : ''}, ${r.length} violations`,
      );
    }
    // The last rounds' clusters: wait out their retention.
    const last = await checkPending(rctx, true);
    for (const v of last) log(describeViolation(seed, v));
    result.violations.push(...last);
    log(
      `retention: ${result.retentionChecked} ended clusters checked gone after retention (${result.tracesBefore} traces of the harness's clusters found as they settled), ${last.length} violations at the end`,
    );
  } finally {
    // Dead machines' agents give up their `done` on their closed connections: nothing is left running.
    if (rctx) await within(Promise.all(rctx.unwinding), 20_000);
    await nc?.close().catch(() => undefined);
    await queues?.close().catch(() => undefined);
    await redis?.quit().catch(() => redis?.disconnect());
    await env.stop();
  }
  result.ms = Date.now() - t0;
  return result;
}

/** What the workers' recent output (their last 8,000 characters each) says about the reports and clusters of the violations: a refusal, an error. */
function workerLinesAbout(env: ChaosEnv, violations: RoundViolation[]): string[] {
  const words = new Set<string>();
  for (const v of violations) for (const m of v.message.matchAll(/\b(cs-\d+\.[a-z_]+\.[0-9a-f]+)\b/g)) words.add(m[1] as string);
  if (words.size === 0) return [];
  const out: string[] = [];
  for (const w of env.workers) {
    for (const line of w.output.split('\n')) if ([...words].some((x) => line.includes(x))) out.push(`    ${w.name} (pid ${w.pid}): ${line.slice(0, 600)}`);
  }
  return out.length > 0 ? ['  the workers said:', ...out] : [`  the workers' recent output does not name ${[...words].join(', ')}`];
}

/**
 * Where the reports named by the violations are in BullMQ's reports queue: each batch job that
 * carries one, with its state, attempts and failure reason (completed jobs are removed, so a
 * report folded normally shows nothing here).
 */
async function batchJobsAbout(queues: QueueSet, violations: RoundViolation[]): Promise<string[]> {
  const ids = new Set<string>();
  for (const v of violations) for (const m of v.message.matchAll(/\b(cs-\d+\.[a-z_]+\.[0-9a-f]+)\b/g)) ids.add(m[1] as string);
  if (ids.size === 0) return [];
  try {
    const jobs = await queues.reports.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed']);
    const out: string[] = [];
    for (const job of jobs) {
      const text = JSON.stringify(job.data);
      for (const id of ids) {
        if (!text.includes(id)) continue;
        out.push(
          `    batch job ${job.id} holding ${id}: ${await job.getState()}, attempts ${job.attemptsMade}, stalled ${job.stalledCounter ?? 0}${job.failedReason ? `, failed: ${job.failedReason}` : ''}, added ${new Date(job.timestamp).toISOString()}${job.processedOn ? `, processed ${new Date(job.processedOn).toISOString()}` : ''}`,
        );
      }
    }
    return out.length > 0 ? ['  in BullMQ:', ...out] : [`  no batch job in BullMQ holds ${[...ids].join(', ')} (completed ones are removed)`];
  } catch (err) {
    return [`  could not read BullMQ's reports queue: ${errorMessage(err)}`];
  }
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
  const submitted: Submitted[] = [];
  const clients: RecordingClient[] = [];
  // The round's machines (admission agents) and the sampler that checks admission's state while they run.
  const lab = plan.machines ? new MachineLab(plan.machines, { natsServers: env.config.natsUrl.split(','), subjects, history, onClient: (cl) => clients.push(cl) }) : undefined;
  const sampler = lab ? new AdmissionSampler(store, MachineLab.prefix(plan.round), lab.runs) : undefined;
  if (lab) {
    for (const m of plan.machines?.machines ?? []) countFault(result, 'machines', m.events.filter((e) => e.kind === 'come').length);
    for (const m of plan.machines?.machines ?? []) for (const e of m.events) if (e.kind !== 'come') countFault(result, `machine ${e.kind}`);
    lab.start(t0);
    sampler?.start();
  }
  const ended = (cid: string) => async (): Promise<void> => {
    while (Date.now() < deadline) {
      const final = await store.finalResult(cid).catch(() => undefined);
      if (final) return;
      // Gone whole (retention took it): it ended.
      if (!(await store.presence(cid).catch(() => ({ meta: true }))).meta) return;
      await sleep(250);
    }
  };

  const submitting = plan.clusters.map(async (c, k) => {
    await sleep(c.submitMs);
    try {
      const prepared = prepareClusters(jobText(c, plan.machines), 'chaos job', { inlineSpec: specText(c, `r${plan.round}c${k}`, plan.machines), heartbeatIntervalMs: HEARTBEAT_MS });
      // Told "submitted" only once the replicas hold it, as the scheduler's answer (DESIGN §7); else it is the reaper's.
      const mark = ctx.replication.mark(queues.connection);
      const [sc] = await submitClusters(store, queues, prepared);
      await ctx.replication.waitForReplicas(queues.connection, mark);
      if (!sc) return;
      const s: Submitted = { cid: sc.cluster, jobs: sc.jobs, plan: c, lives: [] };
      submitted.push(s);
      history.add({
        kind: 'submit',
        cluster: sc.cluster,
        detail: sc.jobs.map((j, i) => `${j.job_id}:${c.nodes[i]?.behaviour}${c.nodes[i]?.behaviour === 'pass' ? '' : `@${c.nodes[i]?.at}`}${c.nodes[i]?.legacy ? ':legacy' : ''}`).join(' '),
      });
      result.clusters++;
      result.nodes += sc.jobs.length;
      for (const [i, j] of sc.jobs.entries()) {
        const np = c.nodes[i]!;
        const nctx = { history, heartbeatMs: HEARTBEAT_MS, ended: ended(sc.cluster) };
        if (lab && c.machineTestboxes) {
          s.lives.push(lab.node(j.job_id, np, i, nctx));
        } else if (np.legacy) {
          s.lives.push(legacyLife(() => env.schedulerUrl, j.job_id, sc.cluster, np, i, nctx));
        } else {
          s.lives.push(takerLife(j, np, i, { ...nctx, nc, subjects, deadline, onClient: (cl) => clients.push(cl) }));
        }
        if (np.duplicate) countFault(result, 'duplicate report');
        if (np.reorder) countFault(result, 'reordered report');
        if (np.late) countFault(result, 'late report');
      }
      s.settled = settle(s, ctx, history, deadline, ended(s.cid));
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
  await Promise.all(submitted.map((s) => s.settled));
  // Every cluster settled: no machine may still be reserved for, or assigned an untaken job of, one that ended.
  const released: RoundViolation[] = [];
  if (sampler) {
    await sampler.stop();
    const last = await sampler.once().catch(() => undefined);
    if (last) released.push(...checkReleased(last).map((v) => ({ ...v, round: plan.round, lines: [] })));
    released.push(
      ...sampler.violations.map((v) => ({
        ...v,
        round: plan.round,
        lines: history.lines.filter((l) => l.kind === 'machine' || (l.cluster !== undefined && l.cluster === v.cluster && (l.kind === 'take' || l.kind === 'submit'))),
      })),
    );
    ctx.result.snapshotsChecked += sampler.snapshots;
  }
  if (lab) ctx.unwinding.push((await lab.stop()).unwinding);
  observer.unsubscribe();
  await Promise.all(clients.map((c) => c.close()));

  const under: ClusterUnderCheck[] = [];
  for (const s of submitted) {
    ctx.known.add(s.cid);
    if (s.plan.machineTestboxes) {
      result.machineClusters.total++;
      if (s.record?.admission?.admitted !== undefined) result.machineClusters.admitted++;
      if (s.record?.admission?.endCause === 'not_admitted') result.machineClusters.notAdmitted++;
    }
    if (s.record) under.push({ record: s.record, plan: s.plan, ...(s.target?.endedAt !== undefined ? { endedAt: s.target.endedAt } : {}) });
    if (s.target) ctx.result.tracesBefore += (await leftovers(store, queues, s.target)).length;
    if (s.target) ctx.pending.push({ target: s.target, round: plan.round, shown: history.lines.filter((l) => l.cluster === s.cid && (l.kind === 'submit' || l.kind === 'broadcast')).slice(0, 6) });
  }
  for (const l of history.lines) if (l.kind === 'note') ctx.log(`round ${plan.round}: ${formatLine(l)}`);
  const { violations, reportsChecked, recordsChecked } = checkRound(history.lines, under, {
    ...ctx.check,
    t0: history.t0,
    priorFaultEnd: ctx.lastFaultEnd,
    ...(plan.machines ? { machines: plan.machines } : {}),
  });
  const healed = history.lines.filter((l) => l.kind === 'healed' || l.kind === 'pause');
  if (healed.length > 0) ctx.lastFaultEnd = history.t0 + Math.max(...healed.map((l) => l.t));
  result.reportsChecked += reportsChecked;
  result.recordsChecked += recordsChecked;
  const out: RoundViolation[] = [...violations.map((v) => ({ ...v, round: plan.round })), ...released];
  out.push(
    ...(await wholeOrAbsent(ctx, plan.round)).map((message) => ({
      round: plan.round,
      invariant: 'integrity' as const,
      message,
      lines: history.lines.filter((l) => l.kind === 'fault' || l.kind === 'healed'),
    })),
  );
  return out;
}
