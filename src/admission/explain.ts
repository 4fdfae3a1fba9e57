import { formatDuration } from '../core/duration';
import type { AdmissionStore, MachineRecord } from './admission-store';
import { DEFAULT_ADMIT_TIMEOUT_MS } from './settings';

/** A cluster waiting for admission and what it waits for, one line per testbox it needs. */
export interface WaitingCluster {
  cluster: string;
  /** Since submit, ms. */
  waitingMs: number;
  /** Its admit timeout, ms. */
  admitTimeoutMs: number;
  /** When it ends `not_admitted`, ms (Redis clock). */
  admitDeadline: number;
  /** "testbox B: no live machine for 3m", "testbox B: 1 machine busy in cs-12", ... */
  waitsFor: string[];
  /** Machines held (reserved) for it. */
  reserved: string[];
}

/** What testbox `tb` lacks for a cluster that needs `count` of its machines. */
export function explainTestbox(tb: string, count: number, cluster: string, machines: readonly MachineRecord[], now: number, lastLiveUntil: number | undefined, since: number): string {
  const mine = machines.filter((m) => m.testbox === tb && m.state !== 'gone');
  const need = `needs ${count}`;
  if (mine.length === 0) {
    const from = Math.max(lastLiveUntil ?? 0, since);
    return `testbox ${tb}: no live machine for ${formatDuration(Math.max(0, now - from))} (${need})`;
  }
  const busy = new Map<string, string[]>();
  let idle = 0;
  const heldHere: string[] = [];
  for (const m of mine) {
    if (m.state === 'idle') idle++;
    else if (m.state === 'reserved' && m.reserved_for === cluster) heldHere.push(m.id);
    else {
      const where = m.state === 'reserved' ? `reserved for ${m.reserved_for ?? '?'}` : `busy in ${m.cluster ?? '?'}`;
      busy.set(where, [...(busy.get(where) ?? []), m.id]);
    }
  }
  const parts = [...busy].map(([where, ids]) => `${ids.length} machine${ids.length > 1 ? 's' : ''} ${where} (${ids.join(', ')})`);
  if (idle > 0) parts.push(`${idle} idle`);
  if (heldHere.length > 0) parts.push(`${heldHere.length} reserved for it`);
  return `testbox ${tb}: ${parts.join(', ')} (${need})`;
}

/** Every waiting cluster with what it waits for (status, the web page, the not_admitted reason). */
export async function explainWaiting(store: AdmissionStore, defaultAdmitTimeoutMs = DEFAULT_ADMIT_TIMEOUT_MS, limit = 200, only?: readonly string[]): Promise<WaitingCluster[]> {
  const [cids, machines, seenRaw, [sec, usec]] = await Promise.all([
    only ? Promise.resolve([...only]) : store.waiting(limit),
    store.machines(),
    store.redis.hgetall(store.keys.testboxSeen),
    store.redis.time(),
  ]);
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  // The workers' sweep indexes each waiting cluster's admit deadline with the workers' --admit-timeout
  // (`cs/admit/due`): that one holds, not this process's default, which status and the web page only guess.
  const due = cids.length > 0 ? await store.redis.zmscore(store.keys.admitDue, ...cids) : [];
  const out: WaitingCluster[] = [];
  for (const [i, cid] of cids.entries()) {
    const [needsRaw, created, timeout, reservedRaw] = await store.redis.hmget(store.keys.meta(cid), 'needs', 'created', 'admit_timeout_ms', 'reserved');
    if (!needsRaw || !created) continue;
    const needs = JSON.parse(needsRaw) as Record<string, string[]>;
    const since = Number(created);
    const indexed = due[i];
    const admitTimeoutMs = Number(timeout) || (indexed !== null && indexed !== undefined ? Number(indexed) - since : defaultAdmitTimeoutMs);
    out.push({
      cluster: cid,
      waitingMs: now - since,
      admitTimeoutMs,
      admitDeadline: since + admitTimeoutMs,
      waitsFor: Object.keys(needs)
        .sort()
        .map((tb) => explainTestbox(tb, needs[tb]?.length ?? 0, cid, machines, now, seenRaw[tb] ? Number(seenRaw[tb]) : undefined, since)),
      reserved: Object.keys(reservedRaw ? (JSON.parse(reservedRaw) as Record<string, string>) : {}),
    });
  }
  return out;
}

/**
 * The failure of a node job no machine took before its cluster ended (`ended`: "finished",
 * "aborted", "ended (<reason>)"): the one wording of admission's reaper, the dispatcher's take of a
 * job of an ended cluster, and its reaper of jobs active with no take recorded (the chaos checker
 * matches it).
 */
export function neverTakenReason(cluster: string, ended: string): string {
  return `its cluster ${cluster} ${ended} before any machine took this node job`;
}

/** The reason a cluster ends with when its admit timeout comes. */
export function notAdmittedReason(w: WaitingCluster): string {
  return `not admitted within ${formatDuration(w.admitTimeoutMs)}: waited for ${w.waitsFor.join('; ')}`;
}
