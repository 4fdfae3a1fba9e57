import { BARRIERS } from '../src/core/states';
import type { Barrier } from '../src/core/states';
import type { HistoryLine } from './history';
import type { ClusterPlan, MachinesPlan } from './plan';
import { checkAdmission } from './admission-check';
import type { ClusterStore } from '../src/cluster/store';
import { testboxQueueName } from '../src/queue/queues';
import type { QueueSet } from '../src/queue/queues';
import { sleep } from './env';
import { leftovers, retentionTarget } from './records';
import type { ClusterRecord, NodeJobRecord, RetentionTarget } from './records';

/**
 * The invariants a chaos round must keep, checked from the clients'
 * history and the servers' records (README "How we test for faults"):
 * safety, exactly once, liveness, integrity. Each violation carries the
 * history lines that show it.
 */
export interface Violation {
  invariant: 'safety' | 'exactly-once' | 'liveness' | 'integrity' | 'record' | 'retention' | 'admission';
  cluster?: string;
  message: string;
  lines: HistoryLine[];
}

export interface CheckOptions {
  /** A barrier whose nodes all reported resolves within this, ms, when no fault is near. */
  boundMs: number;
  /** ... and within this when a fault is near (the recovery bound). */
  recoveryMs: number;
  heartbeatMs: number;
  /** The clusters' cluster_timeout, ms. */
  timeoutMs: number;
  /** The workers' sweep period, ms. */
  sweepMs: number;
  /** Epoch ms of the history's time 0, to place the servers' times on it. */
  t0: number;
  /** When the previous round's last fault ended (epoch ms): its recovery reaches into this round. */
  priorFaultEnd?: number;
  /** The round's machines (admission clusters). */
  machines?: MachinesPlan;
}

export interface ClusterUnderCheck {
  record: ClusterRecord;
  plan: ClusterPlan;
  /** When it ended (Redis clock, ms), if it did. */
  endedAt?: number;
}

const RANK: Record<string, number> = { start: 1, ready: 2, finish: 3, abort: 4 };
const STATE_OF: Record<string, string> = { wait_start: 'start', wait_ready: 'ready', wait_finish: 'finish', finished: 'finish', failed: 'abort', abort: 'abort' };

/**
 * The failures the dispatcher records itself (workers/dispatcher.ts): a node
 * aborted as dead, and a node job whose cluster ended while its node never
 * said done within `--end-grace`.
 */
const DISPATCHER_REASON = /^aborted: no heartbeat|never reported the job's end$/;

/**
 * The failure of a node job never handed out whose cluster ended first (workers/admission.ts,
 * workers/dispatch/take.ts: "node jobs of an ended cluster are never handed out and end with it").
 */
const NEVER_HANDED_OUT = /^its cluster \S+ (finished|aborted|ended \(.*\)) before any machine took this node job$/;

/** Whether a node job's record says what its node said in its `done`. */
function recordSays(r: NodeJobRecord, done: HistoryLine): boolean {
  if (done.what === 'passed') return r.state === 'completed' && (r.returnvalue as { outcome?: unknown } | undefined)?.outcome === 'passed';
  return r.state === 'failed' && r.failedReason === `${done.what ?? ''}: ${done.detail ?? 'no reason given'}`;
}

function describeRecord(r: NodeJobRecord): string {
  if (r.state === 'completed') return `completed (${JSON.stringify(r.returnvalue)})`;
  if (r.state === 'failed') return `failed (${r.failedReason ?? 'no reason'})`;
  return r.state;
}

function reaches(kind: string | undefined, b: Barrier): boolean {
  const s = STATE_OF[kind ?? ''];
  return s !== undefined && s !== 'abort' && (RANK[s] ?? 0) >= (RANK[b] ?? 0);
}

export function checkRound(lines: HistoryLine[], clusters: ClusterUnderCheck[], o: CheckOptions): { violations: Violation[]; reportsChecked: number; recordsChecked: number } {
  const out: Violation[] = [];
  let reportsChecked = 0;
  let recordsChecked = 0;
  const windows: [number, number][] = [];
  const open = new Map<string, number>();
  for (const l of lines) {
    if (l.kind === 'fault') open.set(`${l.what} ${l.detail ?? ''}`, l.t);
    if (l.kind === 'healed') {
      const k = `${l.what} ${l.detail ?? ''}`;
      windows.push([open.get(k) ?? l.t, l.t]);
      open.delete(k);
    }
  }
  for (const start of open.values()) windows.push([start, Number.POSITIVE_INFINITY]);
  if (o.priorFaultEnd !== undefined) windows.push([o.priorFaultEnd - o.t0, o.priorFaultEnd - o.t0]);
  /** A fault touched [t - recovery, t + bound]: the recovery bound applies. */
  const faultNear = (t: number): boolean => windows.some(([s, e]) => s <= t + o.boundMs && e >= t - o.recoveryMs);
  out.push(
    ...checkAdmission(
      lines,
      clusters.map((c) => ({ record: c.record, plan: c.plan, ...(c.endedAt !== undefined ? { endedAt: c.endedAt } : {}) })),
      { sweepMs: o.sweepMs, boundMs: o.boundMs, recoveryMs: o.recoveryMs, t0: o.t0, faultNear, ...(o.machines ? { machines: o.machines } : {}) },
    ),
  );

  for (const { record: rec, plan } of clusters) {
    const cid = rec.cid;
    const mine = lines.filter((l) => l.cluster === cid);
    const v = (invariant: Violation['invariant'], message: string, shown: HistoryLine[]): void => {
      out.push({ invariant, cluster: cid, message, lines: shown.slice(0, 16) });
    };
    // A legacy wait answers `abort` once the cluster has aborted, whichever barrier it waits at (as
    // Compass-CI does): that word is the cluster's abort, not the result of the barrier asked about.
    const legacyAborts = mine.filter((l) => l.kind === 'answer' && l.legacy && l.result === 'abort');
    const heard = mine.filter((l) => (l.kind === 'answer' || l.kind === 'broadcast') && !legacyAborts.includes(l));
    const serverRes = new Map<string, { result: string; at: number; index: number; reason?: string }>();
    rec.events.forEach((e, index) => {
      if (e.type === 'resolution' && !serverRes.has(e.barrier)) serverRes.set(e.barrier, { result: e.result, at: e.at - o.t0, index, reason: e.reason });
    });

    // Integrity: the cluster is whole.
    if (!rec.view) {
      v(
        'integrity',
        `cluster ${cid} was submitted but its state is gone (${rec.viewError ?? 'not read'})`,
        mine.filter((l) => l.kind === 'submit'),
      );
      continue;
    }
    const have = rec.view.nodes.map((n) => n.job).sort();
    if (have.join(' ') !== [...rec.jobs].sort().join(' ')) v('integrity', `cluster ${cid} has nodes ${have.join(', ')}, submitted ${rec.jobs.join(', ')}`, []);

    for (const b of BARRIERS) {
      const hb = heard.filter((l) => l.barrier === b);
      // Safety: one result per barrier, the same for every node, the observer and the record.
      const results = new Set(hb.map((l) => l.result));
      const sr = serverRes.get(b);
      if (sr) results.add(sr.result);
      if (results.size > 1) v('safety', `barrier ${b} has two results: ${[...results].join(' and ')}${sr ? ` (recorded: ${sr.result})` : ''}`, hb);
      // Safety: nobody hears B before every node had sent a report of state >= B.
      const firstB = hb.find((l) => l.result === b);
      if (firstB) {
        for (const job of rec.jobs) {
          const sends = mine.filter((l) => l.job === job && l.kind === 'send' && l.t <= firstB.t && reaches(l.what, b));
          if (sends.length === 0)
            v('safety', `${firstB.job ?? 'the observer'} heard ${b}=${b} before node ${job} had reported reaching ${b}`, [
              firstB,
              ...mine.filter((l) => l.job === job && (l.kind === 'send' || l.kind === 'ack')),
            ]);
        }
      }
      // Safety, server side: the resolution B=B comes after every node's move to >= B in the log.
      if (sr && sr.result === b) {
        for (const job of rec.jobs) {
          const moved = rec.events.slice(0, sr.index).some((e) => e.type === 'report' && e.job === job && e.state !== 'abort' && (RANK[e.state] ?? 0) >= (RANK[b] ?? 0));
          if (!moved)
            v(
              'safety',
              `the log resolves ${b}=${b} before node ${job} reached ${b}`,
              mine.filter((l) => l.job === job),
            );
        }
      }
    }
    if (legacyAborts.length > 0 && !rec.events.some((e) => e.type === 'resolution' && e.result === 'abort')) v('safety', 'a legacy node was told abort, but the cluster never aborted', legacyAborts);
    // Abort is final: after an abort resolution, no other result; after a node's abort, no other state.
    const firstAbort = rec.events.findIndex((e) => e.type === 'resolution' && e.result === 'abort');
    if (firstAbort >= 0 && rec.events.slice(firstAbort).some((e) => e.type === 'resolution' && e.result !== 'abort')) v('safety', 'a barrier resolved after the cluster aborted', heard);
    for (const job of rec.jobs) {
      const evs = rec.events.filter((e) => e.type === 'report' && e.job === job);
      const ab = evs.findIndex((e) => e.type === 'report' && e.state === 'abort');
      if (ab >= 0 && evs.slice(ab).some((e) => e.type === 'report' && e.state !== 'abort'))
        v(
          'safety',
          `node ${job} left abort`,
          mine.filter((l) => l.job === job),
        );
      // Exactly once: one event per state move.
      const moves = evs.filter((e) => e.type === 'report' && e.state !== e.from).map((e) => (e.type === 'report' ? e.state : ''));
      const ranks = moves.map((s) => RANK[s] ?? 0);
      if (ranks.some((r, i) => i > 0 && r <= (ranks[i - 1] ?? 0)))
        v(
          'exactly-once',
          `node ${job} has the moves ${moves.join(' -> ')} (a move folded twice or backwards)`,
          mine.filter((l) => l.job === job),
        );
    }
    // Exactly once: every acknowledged report was folded (its id is in the cluster's records).
    const acked = new Map<string, HistoryLine>();
    for (const l of mine) if (l.kind === 'ack' && l.id && l.what !== 'heartbeat') acked.set(l.id, l);
    reportsChecked += acked.size;
    for (const [id, l] of acked) {
      if (!rec.folded.has(id))
        v(
          'exactly-once',
          `report ${id} (${l.what} of ${l.job}) was acknowledged but never folded`,
          [
            ...lines.filter((x) => x.kind === 'fault' || x.kind === 'healed'),
            ...mine.filter((x) => x.id === id || (x.job === l.job && x.kind !== 'send' && x.kind !== 'ack')),
            ...mine.filter((x) => x.kind === 'broadcast'),
          ].sort((a, b) => a.n - b.n),
        );
    }

    // Liveness: every barrier whose nodes all reported resolves within the bound.
    const paused = mine.some((l) => l.kind === 'pause');
    for (const b of BARRIERS) {
      let tAll = 0;
      const shown: HistoryLine[] = [];
      let all = true;
      for (const job of rec.jobs) {
        const legacy = mine.some((l) => l.job === job && l.legacy);
        const l = mine.find((x) => x.job === job && x.kind === (legacy ? 'send' : 'ack') && reaches(x.what, b));
        if (!l) {
          all = false;
          break;
        }
        tAll = Math.max(tAll, l.t);
        shown.push(l);
      }
      if (!all) continue;
      const hb = heard.filter((l) => l.barrier === b);
      const sr = serverRes.get(b);
      const tRes = Math.min(...hb.map((l) => l.t), sr ? sr.at : Number.POSITIVE_INFINITY);
      if (!Number.isFinite(tRes)) {
        v('liveness', `every node reported reaching ${b} (the last at ${(tAll / 1000).toFixed(3)}s) but ${b} never resolved`, shown);
        continue;
      }
      const near = paused || faultNear(tAll);
      const bound = near ? o.recoveryMs : o.boundMs;
      const how = sr ? `${sr.result}${sr.reason ? ` (${sr.reason})` : ''}` : '';
      if (tRes - tAll > bound)
        v('liveness', `${b} resolved ${how} ${tRes - tAll} ms after its last node reported (bound ${bound} ms${near ? ', a fault was near' : ''})`, [...shown, ...hb.slice(0, 2)]);
    }
    // Liveness: a dead node aborts its cluster within the dead-node window; a hung one at the deadline.
    const tFinal = (): number => {
      const f = rec.events.find((e) => e.type === 'resolution' && (e.result === 'abort' || e.barrier === 'finish'));
      return f ? f.at - o.t0 : Number.POSITIVE_INFINITY;
    };
    for (const l of mine.filter((x) => x.kind === 'die' || x.kind === 'hang')) {
      const end = tFinal();
      const limit = l.kind === 'die' ? 3 * o.heartbeatMs + o.sweepMs : o.timeoutMs + o.sweepMs;
      const bound = limit + (faultNear(l.t) || paused ? o.recoveryMs : o.boundMs);
      if (end - l.t > bound)
        v(
          'liveness',
          `node ${l.job} ${l.kind === 'die' ? 'died' : 'hung'} at ${(l.t / 1000).toFixed(3)}s; its cluster ${Number.isFinite(end) ? `ended ${end - l.t} ms later` : 'never ended'} (bound ${bound} ms)`,
          [l],
        );
    }
    if (!rec.view.final) v('liveness', `cluster ${cid} never ended (pending ${rec.view.pending ?? '-'})`, mine.slice(-6));

    // Record: the BullMQ record of each node job a node took from the dispatcher says how the node
    // ended: what its `done` said (exactly, when the dispatcher acknowledged it), or, for a node that
    // never said done (it died, its `done` was refused, or it never got the take's reply), the
    // dispatcher's own failure: dead node, or no `done` within the end grace. Never left active.
    // Legacy nodes take nothing from the dispatcher (lkp's shell client is started by Compass-CI's
    // own queue): their jobs are not looked at.
    if (rec.nodeJobs) {
      for (const job of rec.jobs) {
        const took = mine.find((l) => l.job === job && l.kind === 'take');
        const never = mine.find((l) => l.job === job && l.kind === 'error' && l.detail?.startsWith('never got its node job'));
        if (!took && !never) continue;
        const r = rec.nodeJobs.get(job) ?? { state: 'unknown' };
        if (r.state === 'unknown' && rec.nodeJobsLate) continue; // read after retention removed it: not checked
        recordsChecked++;
        if (!took && never) {
          // It asked until its cluster ended: its job was handed out and the reply lost (then the end grace fails it), or never
          // handed out (then it fails with its cluster, before any machine took it).
          if (!(r.state === 'failed' && (DISPATCHER_REASON.test(r.failedReason ?? '') || NEVER_HANDED_OUT.test(r.failedReason ?? ''))))
            v(
              'record',
              `node job ${job}: its node asked for it until its cluster ended and never got it, and the record is ${describeRecord(r)} (a job handed out whose reply was lost must be failed after the end grace; one still waiting was never handed out)`,
              [never, ...mine.filter((l) => l.job === job && l.kind === 'note')].slice(0, 8),
            );
          continue;
        }
        if (!took) continue;
        const dones = mine.filter((l) => l.job === job && l.kind === 'done');
        const said = dones[0];
        const shown = [took, ...mine.filter((l) => l.job === job && (l.kind === 'die' || l.kind === 'hang' || l.kind === 'error')), ...dones];
        const how = said ? `said done ${said.what}${said.detail ? ` (${said.detail})` : ''}` : 'never said done';
        const asSaid = said !== undefined && recordSays(r, said);
        const byDispatcher = r.state === 'failed' && DISPATCHER_REASON.test(r.failedReason ?? '');
        if (r.state !== 'completed' && r.state !== 'failed') v('record', `node job ${job} is ${r.state} after its cluster ended; its node ${how}`, shown);
        else if (dones.some((l) => l.result === 'ok') && !asSaid) v('record', `node job ${job}: its node ${how}, acknowledged, but the record is ${describeRecord(r)}`, shown);
        else if (!asSaid && !byDispatcher)
          v('record', `node job ${job}: its node ${how}, but the record is ${describeRecord(r)}, neither that nor a failure of the dispatcher's own (dead node, no done within the end grace)`, shown);
      }
    }
    void plan;
  }
  return { violations: out, reportsChecked, recordsChecked };
}

export interface RetentionOptions {
  /** The workers' `--retention`, ms. */
  retentionMs: number;
  sweepMs: number;
  /** Slack for a sweep delayed by a fault, ms. */
  recoveryMs: number;
}

/**
 * Retention: an ended cluster has nothing left in Redis (README
 * "Retention": its keys, hash fields, set members, `submitted` event, node
 * jobs' records) once `--retention` has passed since it ended, give or take
 * two sweeps and the recovery slack. `remaining` is what `leftovers()` found
 * at `now` (epoch ms). Answers `gone`, `wait` (not due yet, something left),
 * or the violation.
 */
export function checkRetention(c: { cid: string; endedAt: number | undefined; remaining: string[] }, now: number, o: RetentionOptions, shown: HistoryLine[] = []): 'gone' | 'wait' | Violation {
  if (c.remaining.length === 0) return 'gone';
  if (c.endedAt === undefined) return 'wait';
  const due = c.endedAt + o.retentionMs + 2 * o.sweepMs + o.recoveryMs;
  if (now < due) return 'wait';
  return {
    invariant: 'retention',
    cluster: c.cid,
    message: `cluster ${c.cid} ended ${now - c.endedAt} ms ago (retention ${o.retentionMs} ms, allowed until ${due - c.endedAt} ms) but ${c.remaining.length} of its traces remain: ${c.remaining.slice(0, 8).join('; ')}${c.remaining.length > 8 ? '; ...' : ''}`,
    lines: shown,
  };
}

/**
 * What the checks that read the servers need (a round's context has it):
 * the store, the queues, the settings, and the clusters still pending
 * retention's check.
 */
export interface ServerCheckContext {
  store: ClusterStore;
  queues: QueueSet;
  env: { submitGraceMs: number };
  check: { recoveryMs: number; timeoutMs: number; sweepMs: number };
  retention: RetentionOptions;
  result: { retentionChecked: number };
  /** Cluster ids already checked for integrity. */
  known: Set<string>;
  log: (line: string) => void;
  /** Ended (or ending) clusters not yet seen gone after retention. */
  pending: { target: RetentionTarget; round: number; shown: HistoryLine[] }[];
}

/**
 * Retention: every pending cluster that is gone is done with; one past its
 * due time with traces left is a violation. `drain` waits until none is
 * pending (a cluster that never ends, past its deadlines, is liveness's, not
 * retention's: dropped).
 */
export async function checkPending(ctx: ServerCheckContext, drain: boolean): Promise<(Violation & { round: number })[]> {
  const out: (Violation & { round: number })[] = [];
  // Open clusters end at their deadlines at the latest (three barriers); one still open after that is liveness's.
  const giveUpOpen = Date.now() + 3 * ctx.check.timeoutMs + ctx.check.recoveryMs;
  for (;;) {
    const keep: ServerCheckContext['pending'] = [];
    for (const p of ctx.pending) {
      if (p.target.endedAt === undefined) {
        const ended = (await ctx.store.endTimes([p.target.cid]).catch(() => new Map<string, number | undefined>())).get(p.target.cid);
        if (ended !== undefined) p.target.endedAt = ended;
      }
      const remaining = await leftovers(ctx.store, ctx.queues, p.target);
      if (p.target.endedAt === undefined && remaining.length > 0 && drain && Date.now() > giveUpOpen) continue;
      const seen = checkRetention({ cid: p.target.cid, endedAt: p.target.endedAt, remaining }, await ctx.store.now(), ctx.retention, p.shown);
      if (seen === 'wait') keep.push(p);
      else {
        ctx.result.retentionChecked++;
        if (seen !== 'gone') out.push({ ...seen, round: p.round });
      }
    }
    ctx.pending = keep;
    if (!drain || keep.length === 0) return out;
    await sleep(500);
  }
}

/**
 * Integrity: every cluster in Redis that the harness was not told it
 * submitted (the scheduler's, and its own whose submit failed, e.g. not
 * replicated in time) is whole: meta, ids and node jobs all there, or absent.
 * One seen half there is looked at again until it is whole or gone, for up
 * to the workers' `--submit-grace` + two sweeps + the recovery bound: the
 * reaper finishes or removes a half-written cluster after the grace, and
 * retention removes node jobs first and the state last, so a cluster it is
 * removing is gone a moment later. Each whole one joins the clusters
 * retention must remove.
 */
export async function wholeOrAbsent(ctx: ServerCheckContext, round: number): Promise<string[]> {
  const { store, queues, known } = ctx;
  const out: string[] = [];
  const all = await store.clusterIds();
  const half = async (cid: string): Promise<string[]> => {
    const problems: string[] = [];
    const view = await store.readCluster(cid).catch(() => undefined);
    const token = await store.token(cid);
    if (!view || !token) return [`cluster ${cid} is half there: state ${view ? 'present' : 'missing'}, meta ${token ? 'present' : 'missing'}`];
    // Its node jobs' queues from its meta: the scheduler's clusters are on testbox chaos-sched, but a harness
    // submit that failed after queueing every node job (Redis out of memory) is completed by the reaper.
    const where = await store.nodeQueues(cid);
    for (const n of view.nodes) {
      const owner = await store.clusterOfJob(n.job);
      const job = await queues.get(where[n.job] ?? testboxQueueName('chaos-sched')).getJob(n.job);
      if (owner !== cid || !job) problems.push(`cluster ${cid} is half there: node ${n.job} ${owner !== cid ? 'has no id map entry' : 'has no node job queued'}`);
    }
    return problems;
  };
  for (const cid of all) {
    if (known.has(cid)) continue;
    known.add(cid);
    let problems = await half(cid);
    const seen = problems.length > 0 ? Date.now() : Number.POSITIVE_INFINITY;
    let gone = false;
    while (problems.length > 0 && Date.now() - seen < ctx.env.submitGraceMs + 2 * ctx.check.sweepMs + ctx.check.recoveryMs) {
      await sleep(500);
      const there = await store.presence(cid);
      gone = !there.state && !there.meta;
      if (gone) break;
      problems = await half(cid);
    }
    if (problems.length === 0 || gone) {
      if (Date.now() > seen) ctx.log(`round ${round}: cluster ${cid} was half there, then ${gone ? 'gone' : 'whole'} ${Date.now() - seen} ms later (the reaper's or retention's work)`);
      if (gone) continue;
    }
    out.push(...problems.map((p) => `${p} (still, ${Date.now() - seen} ms after it was first seen so; submit grace ${ctx.env.submitGraceMs} ms)`));
    const target = problems.length === 0 ? await retentionTarget(store, cid) : undefined;
    if (target) ctx.pending.push({ target, round, shown: [] });
  }
  return out;
}
