import { formatDuration } from '../../src/core/duration';
import { BARRIERS, WAITS_FOR } from '../../src/core/states';
import type { Barrier, NodeState, ReportKind, Result } from '../../src/core/states';
import { MessagesModel } from './messages-model';
import type { ModelMessageEvent, ModelMessageRequest, ModelMessageView } from './messages-model';

/**
 * A pure reference model of a cluster's state (DESIGN §4 and §5), written
 * from the design, not from the Lua: what every fold and every deadline must
 * do to node states, resolutions, the event log, the dedupe records and the
 * heartbeat and open-cluster sets. The property tests apply the same steps to
 * this model and to the real scripts and compare after every step.
 *
 * Rules, as DESIGN states them:
 * - reports map to states (`wait_start`->start, `wait_ready`->ready,
 *   `wait_finish`/`finished`->finish, `failed`/`abort`->abort); `write_state`
 *   (and any report that carries info) records the node's info only;
 * - states only move forward (start < ready < finish), abort is final;
 * - a barrier resolves `abort` as soon as any node is abort, and to itself
 *   when every node is at least there; later barriers never resolve first;
 * - a report id is folded once per cluster; a repeat changes nothing and
 *   answers what the first fold answered (with the barrier's answer as it is now);
 * - a report with a wrong token, an unknown job, or a job of another cluster
 *   is rejected and changes nothing;
 * - a deadline that finds its barrier open resolves it and every later one
 *   `abort`, naming the nodes still missing;
 * - `send` and `wait_msg` (named messages, after the same checks and dedupe)
 *   follow messages-model.ts; a repeat answers the ID's state as it is now.
 */

export interface ModelNode {
  state: NodeState;
  roles: string;
  ip: string;
  direct_ips: string;
  direct_macs: string;
  entire_state: string;
}

export interface ModelResolution {
  barrier: Barrier;
  result: Result;
  reason?: string;
}

export type ModelEvent =
  | { type: 'report'; job: string; roles: string; report: ReportKind; state: NodeState; from: NodeState; ip?: string; reason?: string }
  | ({ type: 'resolution' } & ModelResolution)
  | ({ type: 'message'; job: string; roles: string } & ModelMessageEvent);

export type ModelOutcome =
  { ok: true; dup: boolean; changed: boolean; heartbeat?: true; state: NodeState; resolutions: ModelResolution[]; answer?: ModelResolution; message?: ModelMessageView } | { ok: false; code: string };

export interface ModelReport {
  id: string;
  cluster: string;
  job: string;
  state: ReportKind;
  token: string;
  info?: { node_roles?: string; ip?: string; direct_macs?: string; direct_ips?: string };
  reason?: string;
  /** `send` and `wait_msg`: the message ID, data, wait mode and role (as the wire report carries them). */
  msg?: string;
  data?: Record<string, string>;
  mode?: 'any' | 'all';
  role?: string;
}

const RANK: Record<string, number> = { '': 0, start: 1, ready: 2, finish: 3 };
const TARGET: Partial<Record<ReportKind, NodeState>> = {
  wait_start: 'start',
  wait_ready: 'ready',
  wait_finish: 'finish',
  finished: 'finish',
  failed: 'abort',
  abort: 'abort',
};
const INFO_FIELDS = [
  ['node_roles', 'roles'],
  ['ip', 'ip'],
  ['direct_macs', 'direct_macs'],
  ['direct_ips', 'direct_ips'],
] as const;

/** Job ids in the order the scripts list them in reasons (byte order). */
function byteOrder(ids: Iterable<string>): string[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export class ClusterModel {
  readonly nodes = new Map<string, ModelNode>();
  readonly res = new Map<Barrier, ModelResolution>();
  final: 'finish' | 'abort' | undefined;
  pending: Barrier | '' = 'start';
  readonly events: ModelEvent[] = [];
  /** Dedupe records: report id -> the outcome of its first fold. */
  readonly seen = new Map<string, Extract<ModelOutcome, { ok: true }>>();
  /** Nodes with a heartbeat deadline. */
  readonly heartbeats = new Set<string>();
  open = true;
  readonly messages = new MessagesModel();

  constructor(
    readonly id: string,
    readonly token: string,
    nodes: { job: string; roles: string; direct_ips?: string; direct_macs?: string }[],
    readonly timeoutMs: number,
    /** Roles whose nodes are not essential: their abort aborts nobody, and they stop counting for barriers. */
    readonly optionalRoles: readonly string[] = [],
  ) {
    for (const n of nodes) {
      this.nodes.set(n.job, { state: '', roles: n.roles, ip: '', direct_ips: n.direct_ips ?? '', direct_macs: n.direct_macs ?? '', entire_state: '' });
    }
  }

  private answerFor(kind: ReportKind): ModelResolution | undefined {
    const b = WAITS_FOR[kind];
    return b ? this.res.get(b) : undefined;
  }

  /** Each node's current roles. */
  private roles(): Map<string, string> {
    return new Map([...this.nodes].map(([id, n]) => [id, n.roles]));
  }

  /** Once the cluster aborted, the reason of its first aborted barrier (what message views carry). */
  private abortReason(): string | undefined {
    if (this.final !== 'abort') return undefined;
    for (const b of BARRIERS) {
      const r = this.res.get(b);
      if (r?.result === 'abort') return r.reason || 'cluster aborted';
    }
    return 'cluster aborted';
  }

  /** Resolves what the node states decide now; `forceAbort` adds an aborted phantom (a deadline). */
  private resolve(abortReason: string, forceAbort = false): ModelResolution[] {
    const out: ModelResolution[] = [];
    // A node is essential unless every one of its roles is optional (common.lua is_essential).
    const essential = (n: ModelNode): boolean => {
      const rs = n.roles.split(' ').filter(Boolean);
      return rs.length === 0 || rs.some((r) => !this.optionalRoles.includes(r));
    };
    const aborted = byteOrder([...this.nodes].filter(([, n]) => n.state === 'abort' && essential(n)).map(([id]) => id));
    const counted = [...this.nodes.values()].filter((n) => n.state !== 'abort');
    if (forceAbort) aborted.push('~timeout');
    for (const b of BARRIERS) {
      if (this.res.has(b)) continue;
      let r: ModelResolution;
      if (aborted.length > 0) {
        r = { barrier: b, result: 'abort', reason: abortReason !== '' ? abortReason : `node ${aborted.join(', ')} aborted` };
      } else if (counted.every((n) => (RANK[n.state] ?? 0) >= (RANK[b] ?? 0))) {
        r = { barrier: b, result: b };
      } else {
        break;
      }
      this.res.set(b, r);
      this.events.push({ type: 'resolution', ...r });
      out.push(r);
      if (r.result === 'abort') {
        this.final = 'abort';
        this.pending = '';
      } else if (b === 'finish') {
        this.final = 'finish';
        this.pending = '';
      } else {
        this.pending = BARRIERS[BARRIERS.indexOf(b) + 1] as Barrier;
      }
    }
    const last = out[out.length - 1];
    if (last) {
      for (const n of this.nodes.values()) n.entire_state = last.result;
      if (this.final) {
        this.open = false;
        this.heartbeats.clear();
      }
    }
    return out;
  }

  fold(r: ModelReport): ModelOutcome {
    const node = this.nodes.get(r.job) as ModelNode;
    if (r.state === 'heartbeat') {
      if (!this.final && node.state !== 'finish' && node.state !== 'abort') this.heartbeats.add(r.job);
      return { ok: true, dup: false, changed: false, heartbeat: true, state: node.state, resolutions: [] };
    }
    const first = this.seen.get(r.id);
    if (first) {
      const answer = this.answerFor(r.state);
      // A repeated message report republishes its ID as it is now, keeping its first error.
      const m = first.message;
      const message = m && { ...this.messages.view(m.msg, this.roles(), m.by, this.abortReason()), ...(m.error !== undefined ? { error: m.error } : {}) };
      return { ...first, dup: true, ...(answer ? { answer } : {}), ...(message ? { message } : {}) };
    }
    if (r.state === 'send' || r.state === 'wait_msg') {
      const req: ModelMessageRequest = { msg: r.msg ?? '', ...(r.data ? { data: r.data } : {}), ...(r.mode ? { mode: r.mode } : {}), ...(r.role !== undefined ? { role: r.role } : {}) };
      const { view, event } = this.messages.fold(this.id, r.state, r.job, r.id, req, this.roles(), this.abortReason());
      if (event) this.events.push({ type: 'message', job: r.job, roles: node.roles, ...event });
      const outcome = { ok: true as const, dup: false, changed: event !== undefined, state: node.state, resolutions: [], message: view };
      this.seen.set(r.id, outcome);
      return outcome;
    }
    const before = node.state;
    let changed = false;
    const target = TARGET[r.state];
    if (target !== undefined && before !== 'abort' && (target === 'abort' || (RANK[target] ?? 0) > (RANK[before] ?? 0))) {
      node.state = target;
      changed = true;
    }
    for (const [from, to] of INFO_FIELDS) {
      const v = r.info?.[from];
      if (v !== undefined && node[to] !== v) {
        node[to] = v;
        changed = true;
      }
    }
    let resolutions: ModelResolution[] = [];
    if (changed) {
      this.events.push({
        type: 'report',
        job: r.job,
        roles: node.roles,
        report: r.state,
        state: node.state,
        from: before,
        ...(node.ip !== '' ? { ip: node.ip } : {}),
        ...(r.reason ? { reason: r.reason } : {}),
      });
      if (node.state === 'finish' || node.state === 'abort') this.heartbeats.delete(r.job);
      let reason = '';
      if (node.state === 'abort' && before !== 'abort') {
        reason = `node ${r.job} (${node.roles}) reported ${r.state}${r.reason ? `: ${r.reason}` : ''}`;
      }
      resolutions = this.resolve(reason);
    }
    const outcome = { ok: true as const, dup: false, changed, state: node.state, resolutions };
    this.seen.set(r.id, outcome);
    const answer = this.answerFor(r.state);
    return { ...outcome, ...(answer ? { answer } : {}) };
  }

  /** Barrier `b`'s deadline fires. */
  timeout(b: Barrier): ModelOutcome & { ok: true } {
    const quiet = { ok: true as const, dup: false, changed: false, state: '' as NodeState, resolutions: [] };
    if (this.res.has(b)) return quiet;
    const missing = byteOrder(this.nodes.keys())
      .filter((id) => {
        const n = this.nodes.get(id) as ModelNode;
        return n.state !== 'abort' && (RANK[n.state] ?? 0) < (RANK[b] ?? 0);
      })
      .map((id) => `${id} (${(this.nodes.get(id) as ModelNode).roles})`);
    const resolutions = this.resolve('');
    if (!this.res.has(b)) {
      const reason = `barrier ${b} timed out after ${formatDuration(this.timeoutMs)}; still missing: ${missing.join(', ')}`;
      resolutions.push(...this.resolve(reason, true));
      for (const n of this.nodes.values()) n.entire_state = 'abort';
    }
    return { ...quiet, changed: resolutions.length > 0, resolutions };
  }
}

/** Every cluster of one Redis namespace, and which cluster owns which job. */
export class WorldModel {
  readonly clusters = new Map<string, ClusterModel>();
  readonly owner = new Map<string, string>();

  create(c: ClusterModel): void {
    this.clusters.set(c.id, c);
    for (const job of c.nodes.keys()) this.owner.set(job, c.id);
  }

  fold(r: ModelReport): ModelOutcome {
    const c = this.clusters.get(r.cluster);
    if (!c) return { ok: false, code: 'UNKNOWN_CLUSTER' };
    if (c.token !== r.token) return { ok: false, code: 'BAD_TOKEN' };
    const owner = this.owner.get(r.job);
    if (owner === undefined) return { ok: false, code: 'UNKNOWN_JOB' };
    if (owner !== r.cluster) return { ok: false, code: 'OTHER_CLUSTER' };
    return c.fold(r);
  }

  timeout(cid: string, b: Barrier): ModelOutcome {
    const c = this.clusters.get(cid);
    if (!c) return { ok: false, code: 'UNKNOWN_CLUSTER' };
    return c.timeout(b);
  }
}
