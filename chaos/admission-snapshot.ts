import type { MachineRecord } from '../src/admission/admission-store';
import type { ClusterStore } from '../src/cluster/store';
import { sleep } from './env';
import type { Violation } from './checker';
import type { MachineRun } from './machine-lab';

/**
 * Admission as Redis holds it, read atomically (one read-only script, so it
 * is the state between two admission calls) every `everyMs` while a chaos
 * round runs, and checked at once against the invariants that hold at every
 * instant (DESIGN §9):
 *  - no node job assigned to two machines;
 *  - no machine assigned a job of a cluster that is not admitted, or not the
 *    job the cluster's assignment names for it (all or nothing);
 *  - no machine assigned a job while the campaign's agent of that machine is
 *    still running another (a machine holds one node job);
 *  - no machine reserved for an admitted cluster, or for a cluster one of
 *    whose testboxes has no live machine (live: in the testbox's live set,
 *    i.e. its lease had not lapsed at the last admission call).
 */

/**
 * KEYS[1] machines hash   KEYS[2] waiting zset
 * ARGV[1] meta key template   ARGV[2] testbox live key template (`{}` = the id)   ARGV[3] machine id prefix
 * Returns JSON { machines: [record], clusters: { cid: { admitted, assign, needs, final, exists, waiting } }, live: { testbox: n } }.
 */
const SNAPSHOT_LUA = `
local function tpl(t, id) local i = string.find(t, '{}', 1, true) return string.sub(t, 1, i - 1) .. id .. string.sub(t, i + 2) end
local raw = redis.call('HGETALL', KEYS[1])
local machines, clusters, live = {}, {}, {}
for i = 1, #raw, 2 do
  if string.sub(raw[i], 1, #ARGV[3]) == ARGV[3] then
    local m = cjson.decode(raw[i + 1])
    machines[#machines + 1] = m
    local cid = m.reserved_for or m.cluster
    if cid and m.state ~= 'gone' and not clusters[cid] then
      local f = redis.call('HMGET', tpl(ARGV[1], cid), 'admitted', 'assign', 'needs', 'final', 'token')
      clusters[cid] = { admitted = f[1] or '', assign = f[2] or '{}', needs = f[3] or '{}', final = f[4] or '',
                        exists = f[5] and 1 or 0, waiting = redis.call('ZSCORE', KEYS[2], cid) and 1 or 0 }
      local ok, needs = pcall(cjson.decode, f[3] or '{}')
      if ok then for tb, _ in pairs(needs) do if not live[tb] then live[tb] = redis.call('ZCARD', tpl(ARGV[2], tb)) end end end
    end
  end
end
return cjson.encode({ machines = machines, clusters = clusters, live = live })
`;

interface SnapCluster {
  admitted: string;
  assign: string;
  needs: string;
  final: string;
  exists: number;
  waiting: number;
}

export interface AdmissionSnapshot {
  /** Epoch ms when the read was sent and when its answer came. */
  sent: number;
  recv: number;
  machines: MachineRecord[];
  clusters: Record<string, SnapCluster>;
  live: Record<string, number>;
}

export async function readSnapshot(store: ClusterStore, prefix: string): Promise<AdmissionSnapshot> {
  const k = store.keys;
  const sent = Date.now();
  const raw = (await store.redis.eval(SNAPSHOT_LUA, 2, k.machines, k.admitWaiting, k.meta('{}'), k.testboxLive('{}'), prefix)) as string;
  const recv = Date.now();
  const v = JSON.parse(raw) as { machines: MachineRecord[] | Record<string, never>; clusters: Record<string, SnapCluster> | unknown[]; live: Record<string, number> | unknown[] };
  // cjson encodes an empty table as {}.
  return {
    sent,
    recv,
    machines: Array.isArray(v.machines) ? v.machines : [],
    clusters: Array.isArray(v.clusters) ? {} : v.clusters,
    live: Array.isArray(v.live) ? {} : v.live,
  };
}

const parse = <T>(s: string, dflt: T): T => {
  try {
    return JSON.parse(s) as T;
  } catch {
    return dflt;
  }
};

/** The instant invariants of one snapshot (see the top of this file). `runs`: what the campaign's machines ran. */
export function checkSnapshot(s: AdmissionSnapshot, runs: readonly MachineRun[]): Omit<Violation, 'lines'>[] {
  const out: Omit<Violation, 'lines'>[] = [];
  const at = `(snapshot ${new Date(s.sent).toISOString().slice(11, 23)})`;
  const byJob = new Map<string, string>();
  for (const m of s.machines) {
    if (m.state === 'running' && m.job) {
      const other = byJob.get(m.job);
      if (other) out.push({ invariant: 'admission', cluster: m.cluster, message: `node job ${m.job} is assigned to two machines, ${other} and ${m.id} ${at}` });
      byJob.set(m.job, m.id);
      // Revived by a renew after its record lapsed, a running machine may name no cluster.
      const c = m.cluster ? s.clusters[m.cluster] : undefined;
      if (m.cluster && c && c.exists) {
        const assign = parse<Record<string, string>>(c.assign, {});
        if (!c.admitted) out.push({ invariant: 'admission', cluster: m.cluster, message: `machine ${m.id} is assigned node job ${m.job} of ${m.cluster}, which is not admitted ${at}` });
        else if (assign[m.job] !== m.id)
          out.push({
            invariant: 'admission',
            cluster: m.cluster,
            message: `machine ${m.id} is assigned node job ${m.job}, which the assignment of ${m.cluster} gives to ${assign[m.job] ?? 'no machine'} ${at}`,
          });
      }
      const busy = runs.find((r) => r.machine === m.id && r.job !== m.job && r.from < s.sent && (r.to === undefined || r.to > s.recv));
      if (busy) out.push({ invariant: 'admission', cluster: m.cluster, message: `machine ${m.id} is assigned node job ${m.job} while it still runs ${busy.job} (two node jobs) ${at}` });
    }
    if (m.state === 'reserved' && m.reserved_for) {
      const c = s.clusters[m.reserved_for];
      if (!c || !c.exists || c.final) continue; // an ended cluster's reservations are the reaper's (checked at the round's end)
      if (c.admitted) out.push({ invariant: 'admission', cluster: m.reserved_for, message: `machine ${m.id} is reserved for ${m.reserved_for}, which is admitted ${at}` });
      const needs = parse<Record<string, string[]>>(c.needs, {});
      for (const tb of Object.keys(needs))
        if (!(s.live[tb] ?? 0))
          out.push({ invariant: 'admission', cluster: m.reserved_for, message: `machine ${m.id} is reserved for ${m.reserved_for}, whose testbox ${tb} has no live machine ${at}` });
    }
  }
  return out;
}

/** Reads and checks a snapshot every `everyMs` until stop(); each distinct violation is kept once. */
export class AdmissionSampler {
  readonly violations: Omit<Violation, 'lines'>[] = [];
  private readonly seen = new Set<string>();
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  snapshots = 0;

  constructor(
    private readonly store: ClusterStore,
    private readonly prefix: string,
    private readonly runs: readonly MachineRun[],
    private readonly everyMs = 200,
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.once().catch(() => undefined); // Redis restarts are part of the run
        await sleep(this.everyMs);
      }
    })();
  }

  async once(): Promise<AdmissionSnapshot> {
    const s = await readSnapshot(this.store, this.prefix);
    this.snapshots++;
    for (const v of checkSnapshot(s, this.runs)) {
      const key = v.message.replace(/ \(snapshot [^)]*\)$/, '');
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      this.violations.push(v);
    }
    return s;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
