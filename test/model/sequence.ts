import type { Redis } from 'ioredis';
import { isDeepStrictEqual } from 'node:util';
import { BARRIERS } from '../../src/core/states';
import type { Barrier, ReportKind } from '../../src/core/states';
import { asList } from '../../src/fold/outcome';
import type { FoldOutcome } from '../../src/fold/outcome';
import { FoldAdapter, wireReport } from './fold-adapter';
import type { Observed } from './fold-adapter';
import { ClusterModel, WorldModel } from './model';
import type { ModelOutcome, ModelReport } from './model';
import type { ModelMessageRecord } from './messages-model';

/**
 * One generated test case: two clusters (A, the one under test, and B, whose
 * jobs and ids A's reports borrow) and a list of steps. Each step is a batch
 * of actions folded together, or a deadline. `node` indexes pick a node
 * modulo the cluster's size, so every generated value is valid however it
 * shrinks.
 */
export type Target = 'A' | 'B' | 'unknown-job' | 'other-cluster' | 'unknown-cluster';

/**
 * The message part of an action, used when its kind is `send` or `wait_msg`
 * and made valid there (DESIGN's report schema): a `wait_msg` always has a
 * mode (`any` if none) and no data, a role goes only with mode `all`.
 */
export interface MsgSpec {
  id: string;
  data: [string, string][];
  mode: 'none' | 'any' | 'all';
  role: 'none' | 'server' | 'client' | 'nobody';
}

export type Action =
  | {
      t: 'report';
      target: Target;
      node: number;
      kind: ReportKind;
      goodToken: boolean;
      ip?: string;
      roles?: string;
      reason?: string;
      m?: MsgSpec;
    }
  /** Send an earlier report again, as it was (a retry, a re-run after a crash, a late copy). */
  | { t: 'again'; pick: number }
  /** A new report of cluster `target` that reuses an id an earlier report (of any cluster) carried. */
  | { t: 'reuse-id'; pick: number; target: 'A' | 'B'; node: number; kind: ReportKind; m?: MsgSpec };

export type Step = { t: 'batch'; actions: Action[] } | { t: 'deadline'; cluster: 'A' | 'B'; barrier: Barrier };

export interface Sequence {
  a: string[];
  b: string[];
  /** Roles of cluster A whose nodes are not essential. Default none. */
  optional?: string[];
  timeoutMs: number;
  steps: Step[];
}

/** The fields of `send` / `wait_msg` a report carries, from its action's MsgSpec. */
function messageFields(kind: ReportKind, m: MsgSpec | undefined): Pick<ModelReport, 'msg' | 'data' | 'mode' | 'role'> {
  if (kind !== 'send' && kind !== 'wait_msg') return {};
  const spec = m ?? { id: 'm1', data: [], mode: 'none', role: 'none' };
  const mode = spec.mode === 'none' ? (kind === 'wait_msg' ? 'any' : undefined) : spec.mode;
  return {
    msg: spec.id,
    ...(kind === 'send' ? { data: Object.fromEntries(spec.data) } : {}),
    ...(mode ? { mode } : {}),
    ...(mode === 'all' && spec.role !== 'none' ? { role: spec.role } : {}),
  };
}

type Released = { job: string; mode: string; role?: string };
const normalReleased = (list: unknown): Released[] => asList<Released>(list).map((r) => ({ job: r.job, mode: r.mode, ...(r.role !== undefined ? { role: r.role } : {}) }));

/** A message view without its times, in a fixed key order. */
function normalMessage(m: {
  msg: string;
  seq: number;
  senders: { job: string; roles: string; data: Record<string, string> }[];
  abort?: string;
  by?: { job: string; report: string; op: string };
  error?: string;
  released?: unknown;
}): unknown {
  return {
    msg: m.msg,
    seq: m.seq,
    senders: asList<{ job: string; roles: string; data: Record<string, string> }>(m.senders).map((x) => ({ job: x.job, roles: x.roles, data: sortedEntries(x.data) })),
    abort: m.abort ?? null,
    by: m.by ? { job: m.by.job, report: m.by.report, op: m.by.op } : null,
    error: m.error ?? null,
    released: m.released === undefined ? null : normalReleased(m.released),
  };
}

/** A map as [key, value] pairs in key order (Lua writes an empty one as a list). */
function sortedEntries(data: unknown): [string, unknown][] {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return [];
  return Object.entries(data as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

type AnyOutcome =
  | { ok: false; code: string }
  | {
      ok: true;
      dup: boolean;
      changed: boolean;
      heartbeat?: boolean;
      state: string;
      resolutions: { barrier: string; result: string; reason?: string }[];
      answer?: { barrier: string; result: string; reason?: string };
      message?: Parameters<typeof normalMessage>[0];
    };

/** An outcome of either side in one shape: what is compared after each fold. */
function normalOutcome(o: AnyOutcome): unknown {
  if (!o.ok) return { ok: false, code: o.code };
  const res = (r: { barrier: string; result: string; reason?: string }) => ({ barrier: r.barrier, result: r.result, ...(r.reason ? { reason: r.reason } : {}) });
  return {
    ok: true,
    dup: o.dup,
    changed: o.changed,
    ...(o.heartbeat ? { heartbeat: true } : {}),
    state: o.state,
    resolutions: o.resolutions.map(res),
    ...(o.answer ? { answer: res(o.answer) } : {}),
    ...(o.message ? { message: normalMessage(o.message) } : {}),
  };
}

function normalTimeout(o: FoldOutcome | ModelOutcome): unknown {
  if (!o.ok) return { ok: false, code: o.code };
  return { ok: true, resolutions: o.resolutions.map((r) => ({ barrier: r.barrier, result: r.result, ...(r.reason ? { reason: r.reason } : {}) })) };
}

const EVENT_FIELDS: Record<string, string[]> = {
  report: ['type', 'job', 'roles', 'report', 'state', 'from', 'ip', 'reason'],
  resolution: ['type', 'barrier', 'result', 'reason'],
  message: ['type', 'job', 'roles', 'op', 'msg', 'mode', 'role', 'keys', 'released'],
};

/** An event without ids and times (`waited_ms` included), in a fixed key order. */
function normalEvent(e: Record<string, unknown>): Record<string, unknown> {
  const keep = EVENT_FIELDS[String(e.type)] ?? Object.keys(e);
  const out: Record<string, unknown> = Object.fromEntries(keep.filter((f) => e[f] !== undefined && e[f] !== null).map((f) => [f, e[f]]));
  if (out.keys !== undefined) out.keys = asList(out.keys);
  if (out.released !== undefined) out.released = normalReleased(out.released);
  return out;
}

interface View {
  nodes: Record<string, { state: string; roles: string; ip: string; direct_ips: string; direct_macs: string; entire_state: string }>;
  res: Partial<Record<string, { result: string; reason?: string }>>;
  final: string | undefined;
  pending: string;
  events: Record<string, unknown>[];
  heartbeats: string[];
  open: boolean;
  /** Recorded as ended for retention: the model's rule is that a cluster is, exactly when it has a final result. */
  ended: boolean;
  /** Message ID -> [seq, send order, senders' data by job, waits by job as [mode, role, released]]. */
  messages: [string, unknown][];
}

/** A stored message record without times and byte counts, from either side. */
function normalRecord(rec: {
  seq: number;
  order: unknown;
  senders: Record<string, { data: unknown }> | ModelMessageRecord['senders'] | unknown[];
  waits: Record<string, { mode: string; role?: string; released?: unknown }> | ModelMessageRecord['waits'] | unknown[];
}): unknown {
  const senders = rec.senders instanceof Map ? [...rec.senders].map(([j, d]) => [j, sortedEntries(d)]) : sortedEntries(rec.senders).map(([j, s]) => [j, sortedEntries((s as { data: unknown }).data)]);
  const waitList = rec.waits instanceof Map ? [...rec.waits] : sortedEntries(rec.waits);
  const waits = (waitList as [string, { mode: string; role?: string; released?: unknown }][]).map(([j, w]) => [j, w.mode, w.role ?? null, Boolean(w.released)]);
  const byJob = (a: unknown[], b: unknown[]) => (String(a[0]) < String(b[0]) ? -1 : String(a[0]) > String(b[0]) ? 1 : 0);
  return [rec.seq, asList(rec.order), senders.sort(byJob), waits.sort(byJob)];
}

/** One cluster's visible state as a string with a fixed key order, so the two sides compare as strings. */
function canonical(v: View): string {
  const nodes = Object.keys(v.nodes)
    .sort()
    .map((id) => {
      const n = v.nodes[id]!;
      return [id, n.state, n.roles, n.ip, n.direct_ips, n.direct_macs, n.entire_state];
    });
  const res = BARRIERS.map((b) => [b, v.res[b]?.result ?? null, v.res[b]?.reason ?? null]);
  const messages = [...v.messages].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([nodes, res, v.final ?? null, v.pending, v.events.map(normalEvent), [...v.heartbeats].sort(), v.open, v.ended, messages]);
}

function modelView(c: ClusterModel): View {
  return {
    nodes: Object.fromEntries(c.nodes),
    res: Object.fromEntries(c.res),
    final: c.final,
    pending: c.pending,
    events: c.events as unknown as Record<string, unknown>[],
    heartbeats: [...c.heartbeats],
    open: c.open,
    ended: c.final !== undefined,
    messages: [...c.messages.records].map(([id, rec]) => [id, normalRecord(rec)]),
  };
}

function realView(o: Observed): View {
  return {
    ...o,
    messages: Object.entries(o.messages).map(([id, raw]) => [id, normalRecord(JSON.parse(raw) as Parameters<typeof normalRecord>[0])]),
  };
}

/** The first difference between the model's and the Lua's view of a cluster, if any. */
function viewDifference(path: string, model: View, real: View): string | undefined {
  const m = canonical(model);
  const r = canonical(real);
  return m === r ? undefined : difference(path, JSON.parse(m), JSON.parse(r));
}

/** A readable account of where two values first differ. */
function difference(path: string, model: unknown, real: unknown): string | undefined {
  if (isDeepStrictEqual(model, real)) return undefined;
  if (model && real && typeof model === 'object' && typeof real === 'object' && Array.isArray(model) === Array.isArray(real)) {
    for (const key of new Set([...Object.keys(model), ...Object.keys(real)])) {
      const d = difference(`${path}.${key}`, (model as Record<string, unknown>)[key], (real as Record<string, unknown>)[key]);
      if (d) return d;
    }
  }
  return `${path}: model ${JSON.stringify(model)}, Lua ${JSON.stringify(real)}`;
}

export class ModelMismatch extends Error {}

let namespaces = 0;

/**
 * Runs one sequence against a fresh key namespace of `redis` and the model,
 * comparing every outcome and both clusters' visible state after each step.
 * Throws ModelMismatch naming the step and the first difference.
 */
export async function runSequence(redis: Redis, seq: Sequence): Promise<void> {
  const ns = `m${process.pid}x${namespaces++}`;
  const api = new FoldAdapter(redis, `${ns}:`);
  const world = new WorldModel();
  const clusters = { A: seq.a.map((roles, i) => ({ job: `${ns}-a${i}`, roles })), B: seq.b.map((roles, i) => ({ job: `${ns}-b${i}`, roles })) };
  const cid = { A: `${ns}-a0`, B: `${ns}-b0` };
  const token = { A: `tok-a-${ns}`, B: `tok-b-${ns}` };
  const optional = { A: seq.optional ?? [], B: [] };
  await api.createClusters((['A', 'B'] as const).map((which) => ({ cid: cid[which], token: token[which], nodes: clusters[which], timeoutMs: seq.timeoutMs, optionalRoles: optional[which] })));
  for (const which of ['A', 'B'] as const) world.create(new ClusterModel(cid[which], token[which], clusters[which], seq.timeoutMs, optional[which]));
  const sent: ModelReport[] = [];
  const log: string[] = [];
  let n = 0;
  const newId = (): string => `rep-${ns}-${n++}`;
  const nodeOf = (which: 'A' | 'B', i: number): string => clusters[which][i % clusters[which].length]!.job;

  const toReport = (a: Action): ModelReport => {
    if (a.t === 'again') return sent[a.pick % sent.length]!;
    if (a.t === 'reuse-id') {
      const id = sent.length > 0 ? sent[a.pick % sent.length]!.id : newId();
      return { id, cluster: cid[a.target], job: nodeOf(a.target, a.node), state: a.kind, token: token[a.target], ...messageFields(a.kind, a.m) };
    }
    const which = a.target === 'B' ? 'B' : 'A';
    const r: ModelReport = { id: newId(), cluster: cid[which], job: nodeOf(which, a.node), state: a.kind, token: a.goodToken ? token[which] : 'wrong-token', ...messageFields(a.kind, a.m) };
    if (a.target === 'unknown-job') r.job = `${ns}-ghost${a.node % 3}`;
    if (a.target === 'other-cluster') r.job = nodeOf('B', a.node);
    if (a.target === 'unknown-cluster') r.cluster = `${ns}-nocluster`;
    if (a.ip !== undefined || a.roles !== undefined) r.info = { ...(a.ip !== undefined ? { ip: a.ip } : {}), ...(a.roles !== undefined ? { node_roles: a.roles } : {}) };
    if (a.reason) r.reason = a.reason;
    return r;
  };

  for (const [i, step] of seq.steps.entries()) {
    // B is read back after every step that may touch it, and after the last.
    const touchesB = i === seq.steps.length - 1 || (step.t === 'deadline' ? step.cluster === 'B' : step.actions.some((a) => a.t !== 'report' || a.target !== 'A'));
    const watched = touchesB ? [cid.A, cid.B] : [cid.A];
    let real: unknown[];
    let expected: unknown[];
    let observed: Record<string, Observed>;
    if (step.t === 'deadline') {
      log.push(`${i}: deadline ${step.barrier} of ${step.cluster}`);
      real = [normalTimeout(await api.timeout(cid[step.cluster], step.barrier))];
      expected = [normalTimeout(world.timeout(cid[step.cluster], step.barrier))];
      observed = await api.observe(watched);
    } else {
      const actions = step.actions.filter((a) => a.t !== 'again' || sent.length > 0);
      const reports = actions.map(toReport);
      for (const r of reports) {
        log.push(
          `${i}: ${r.state} ${r.job} of ${r.cluster} id ${r.id}${r.token.startsWith('tok') ? '' : ' (wrong token)'}${r.info ? ` info ${JSON.stringify(r.info)}` : ''}${r.msg !== undefined ? ` msg ${JSON.stringify({ msg: r.msg, data: r.data, mode: r.mode, role: r.role })}` : ''}`,
        );
        sent.push(r);
      }
      const [outcomes, seen] = await api.foldAndObserve(
        reports.map((r) => wireReport(r)),
        watched,
      );
      real = outcomes.map(normalOutcome);
      observed = seen;
      expected = reports.map((r) => normalOutcome(world.fold(r)));
    }
    const e = JSON.stringify(expected);
    const outcomeDiff = e === JSON.stringify(real) ? undefined : difference(`step ${i} outcomes`, JSON.parse(e), real);
    const stateDiff =
      viewDifference(`after step ${i}: cluster A [nodes, resolutions, final, pending, events, heartbeats, open, ended, messages]`, modelView(world.clusters.get(cid.A)!), realView(observed[cid.A]!)) ??
      (touchesB
        ? viewDifference(
            `after step ${i}: cluster B [nodes, resolutions, final, pending, events, heartbeats, open, ended, messages]`,
            modelView(world.clusters.get(cid.B)!),
            realView(observed[cid.B]!),
          )
        : undefined);
    const diff = outcomeDiff ?? stateDiff;
    if (diff) throw new ModelMismatch(`${diff}\nsteps:\n  ${log.join('\n  ')}`);
  }
}
