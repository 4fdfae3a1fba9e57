import type { Violation } from './checker';
import type { HistoryLine } from './history';
import type { AdmissionSnapshot } from './admission-snapshot';
import type { ClusterPlan, MachinesPlan } from './plan';
import type { ClusterRecord } from './records';
import { NEVER_GOT } from './nodes';

/**
 * Admission's invariants over a round's clusters once they settled (DESIGN
 * §9; the instant ones are admission-snapshot.ts's):
 *  - every cluster: no node job handed out after its cluster ended, and none
 *    left queued once it ended (the reaper fails them);
 *  - a machine cluster: admitted all at once (its assignment names a machine
 *    for every node job) or not at all (no machine took any of its jobs);
 *    each node job taken once, by the machine its assignment names;
 *  - a machine cluster that was never admitted ends `not_admitted` at its
 *    admit timeout (not before, and within a sweep and the bound after),
 *    its reason naming every testbox it needed; one that needs a testbox
 *    with no machine in the round is never admitted;
 *  - at the round's end, no machine is reserved for, or assigned an untaken
 *    node job of, a cluster that ended.
 */

export interface AdmissionUnderCheck {
  record: ClusterRecord;
  plan: ClusterPlan;
  /** When the cluster ended (Redis clock, ms), if it did. */
  endedAt?: number;
}

export interface AdmissionCheckOptions {
  sweepMs: number;
  boundMs: number;
  recoveryMs: number;
  /** Epoch ms of the history's time 0. */
  t0: number;
  /** Whether a fault was near history time t (the recovery bound applies). */
  faultNear: (t: number) => boolean;
  machines?: MachinesPlan;
}

/** A node job that the reaper locked only to fail it (its cluster ended first), or BullMQ put back after a stall only to fail it. */
const NEVER_HANDED = /before any machine took|stalled/i;

export function checkAdmission(lines: readonly HistoryLine[], clusters: readonly AdmissionUnderCheck[], o: AdmissionCheckOptions): Violation[] {
  const out: Violation[] = [];
  for (const { record: rec, plan, endedAt } of clusters) {
    const cid = rec.cid;
    const mine = lines.filter((l) => l.cluster === cid);
    const takes = mine.filter((l) => l.kind === 'take');
    const v = (message: string, shown: HistoryLine[] = []): void => void out.push({ invariant: 'admission', cluster: cid, message, lines: shown.slice(0, 12) });
    if (!rec.view) continue; // integrity's
    // Every cluster: nothing handed out after the end; nothing left queued.
    for (const [job, r] of rec.nodeJobs ?? []) {
      // Handed out: a node of the harness took it (a job the reaper locked to fail, whose failing was cut short by
      // a fault, is moved to active after the end too, and then failed as an orphan after the end grace).
      const took = mine.some((l) => l.job === job && l.kind === 'take');
      if (took && endedAt !== undefined && r.processedOn !== undefined && r.processedOn > endedAt && !NEVER_HANDED.test(r.failedReason ?? ''))
        v(
          `node job ${job} was handed out ${r.processedOn - endedAt} ms after its cluster ended (record: ${r.state}${r.failedReason ? `, ${r.failedReason}` : ''})`,
          mine.filter((l) => l.job === job),
        );
      // A job its node took, or asked for until the end and never got, is the record check's (checker.ts).
      const taken = mine.some((l) => l.job === job && (l.kind === 'take' || (l.kind === 'error' && l.detail?.startsWith(NEVER_GOT))));
      if (rec.view.final && !taken && ['waiting', 'prioritized', 'delayed', 'waiting-children'].includes(r.state))
        v(`node job ${job} is still ${r.state} in its testbox queue after its cluster ended`);
    }
    if (!plan.machineTestboxes) continue;
    const a = rec.admission;
    if (!a) {
      v('its admission record (meta) could not be read');
      continue;
    }
    // All or nothing, each job once, to the machine its assignment names.
    const byJob = new Map<string, HistoryLine[]>();
    for (const t of takes) byJob.set(t.job ?? '', [...(byJob.get(t.job ?? '') ?? []), t]);
    for (const [job, ts] of byJob) {
      if (ts.length > 1) v(`node job ${job} was handed out ${ts.length} times (machines ${ts.map((t) => t.machine ?? '?').join(', ')})`, ts);
      for (const t of ts) {
        if (a.admitted === undefined) v(`machine ${t.machine ?? '?'} took node job ${job} of a cluster that was never admitted`, [t]);
        else if (a.assign[job] !== t.machine) v(`machine ${t.machine ?? '?'} took node job ${job}, which the assignment gives to ${a.assign[job] ?? 'no machine'}`, [t]);
      }
    }
    if (a.admitted !== undefined) {
      if (a.admittedBy) v(`a machine cluster was admitted by ${a.admittedBy}, not by an admission pass`);
      const assigned = Object.keys(a.assign).sort().join(' ');
      const all = [...rec.jobs].sort().join(' ');
      if (assigned !== all) v(`admitted partly: its assignment names machines for [${assigned}], its node jobs are [${all}]`);
      if (a.endCause === 'not_admitted') v('it was admitted, yet it ended not_admitted');
    }
    // Ends: never admitted -> not_admitted at its admit timeout, naming every testbox it needed.
    const testboxes = Object.keys(a.needs).sort();
    const unmanned = (plan.machineTestboxes ?? []).map((i) => o.machines?.testboxes[i] ?? '?').filter((tb) => o.machines && !o.machines.machines.some((m) => o.machines?.testboxes[m.testbox] === tb));
    if (unmanned.length > 0 && a.admitted !== undefined) v(`it was admitted, though no machine of testbox ${unmanned.join(', ')} ever existed in the round`);
    if (a.admitted === undefined && rec.view.final) {
      const reason = rec.view.barriers.find((b) => b.result === 'abort')?.reason ?? '';
      if (a.endCause !== 'not_admitted') v(`it was never admitted and ended ${a.endCause ?? rec.view.final} (${reason}), not not_admitted`);
      else {
        if (!/^not admitted within /.test(reason)) v(`it ended not_admitted with the reason "${reason}"`);
        const missing = testboxes.filter((tb) => !reason.includes(`testbox ${tb}:`));
        if (missing.length > 0) v(`its not_admitted reason does not name testbox ${missing.join(', ')}: "${reason}"`);
        if (a.created !== undefined && a.admitTimeoutMs !== undefined && endedAt !== undefined) {
          const due = a.created + a.admitTimeoutMs;
          if (endedAt < due) v(`it ended not_admitted ${due - endedAt} ms before its admit timeout (${a.admitTimeoutMs} ms)`);
          const bound = o.sweepMs + (o.faultNear(endedAt - o.t0) || o.faultNear(due - o.t0) ? o.recoveryMs : o.boundMs);
          // A time bound, as the barriers' (1 s without a fault): liveness.
          if (endedAt - due > bound) out.push({ invariant: 'liveness', cluster: cid, message: `it ended not_admitted ${endedAt - due} ms after its admit timeout (bound ${bound} ms)`, lines: [] });
        }
      }
    }
    if (!rec.view.final && a.admitted === undefined) v('it was neither admitted nor ended');
  }
  return out;
}

/** At the round's end: machines still reserved for, or assigned an untaken node job of, a cluster that ended. */
export function checkReleased(s: AdmissionSnapshot): Omit<Violation, 'lines'>[] {
  const out: Omit<Violation, 'lines'>[] = [];
  for (const m of s.machines) {
    const cid = m.state === 'reserved' ? m.reserved_for : m.state === 'running' && !m.taken ? m.cluster : undefined;
    const c = cid ? s.clusters[cid] : undefined;
    if (cid && c?.exists && c.final)
      out.push({ invariant: 'admission', cluster: cid, message: `machine ${m.id} is still ${m.state === 'reserved' ? 'reserved for' : 'assigned an untaken node job of'} ${cid}, which ended` });
  }
  return out;
}
