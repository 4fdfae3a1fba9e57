import type { ClusterView } from '../cluster/view';
import { hostField } from '../cluster/store';
import type { NodeState } from '../core/states';
import type { ClusterEvent } from '../fold/outcome';
import { testboxOfQueue } from '../queue/queues';
import type { EndCause } from './end-cause';
import type { NodeEnd, ProgramRun } from './node-end';
import type { ClusterPolicy } from './policy';

/** One node of a cluster's result. */
export interface NodeResult {
  job: string;
  host: string;
  testbox: string;
  roles: string;
  /** The agent that ran it (`host:pid` or machine id), once it told its end. */
  machine?: string;
  /** False for a node of `essential: false` roles only. */
  essential: boolean;
  /** Its last state in the cluster (Compass-CI's). */
  state: NodeState;
  /** How it ended: passed, test_failed, setup_error, dead_node, timed_out, aborted, or running (open cluster), never_ran. */
  ended: string;
  reason?: string;
  /** Its part passed: it reached `finish`. */
  passed: boolean;
  programs: ProgramRun[];
}

/** A barrier or a named sync of the result: one JUnit test case each. */
export interface StepResult {
  name: string;
  kind: 'barrier' | 'sync';
  result: 'pass' | 'fail' | 'pending';
  /** When it resolved (barrier) or last changed (sync), ms. */
  at?: number;
  took_ms?: number;
  detail?: string;
}

/** Which job each spec host has, from the cluster's meta (`host:<name>` fields). */
function hostsOf(meta: Record<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [f, v] of Object.entries(meta)) if (f.startsWith(hostField(''))) out.set(v, f.slice(hostField('').length));
  return out;
}

function testboxesOf(meta: Record<string, string>): Record<string, string> {
  try {
    return JSON.parse(meta.queues ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}

/** How a node ended, from its own last report when its agent never told (it died, or runs an older agent). */
function endFromEvents(job: string, state: NodeState, events: readonly ClusterEvent[], final: string | undefined, cause: EndCause | undefined): { ended: string; reason?: string } {
  if (state === 'finish') return { ended: 'passed' };
  const own = [...events].reverse().find((e): e is Extract<ClusterEvent, { type: 'report' }> => e.type === 'report' && e.job === job && e.state === 'abort');
  if (own) {
    const r = own.reason ?? '';
    if (own.report === 'failed') return { ended: r.startsWith('setup error') ? 'setup_error' : 'test_failed', reason: r || undefined };
    return { ended: r.startsWith('no heartbeat') ? 'dead_node' : 'aborted', reason: r || undefined };
  }
  if (final === undefined) return { ended: 'running' };
  if (state === '') return { ended: 'never_ran' };
  return { ended: cause === 'timed_out' ? 'timed_out' : 'aborted' };
}

export function nodeResults(
  view: ClusterView,
  meta: Record<string, string>,
  events: readonly ClusterEvent[],
  ends: Map<string, NodeEnd>,
  policy: ClusterPolicy,
  cause: EndCause | undefined,
): NodeResult[] {
  const hosts = hostsOf(meta);
  const queues = testboxesOf(meta);
  const optional = new Set(policy.optionalRoles);
  return view.nodes.map((n) => {
    const end = ends.get(n.job);
    const fallback = endFromEvents(n.job, n.state, events, view.final, cause);
    const roles = n.roles.split(' ').filter(Boolean);
    return {
      job: n.job,
      host: hosts.get(n.job) ?? '',
      testbox: testboxOfQueue(queues[n.job] ?? '') ?? '',
      roles: n.roles,
      machine: end?.machine,
      essential: roles.length === 0 || roles.some((r) => !optional.has(r)),
      state: n.state,
      // A dead node never tells its end; an agent's own word wins otherwise.
      ended: end && fallback.ended !== 'dead_node' ? end.outcome : fallback.ended,
      reason: (end && fallback.ended !== 'dead_node' ? end.reason : fallback.reason) || undefined,
      passed: n.state === 'finish',
      programs: end?.programs ?? [],
    };
  });
}

export function barrierResults(view: ClusterView, events: readonly ClusterEvent[]): StepResult[] {
  return view.barriers.map((b) => {
    const ev = events.find((e): e is Extract<ClusterEvent, { type: 'resolution' }> => e.type === 'resolution' && e.barrier === b.barrier);
    return {
      name: `multinode-barrier-${b.barrier}`,
      kind: 'barrier' as const,
      result: b.result === undefined ? ('pending' as const) : b.result === 'abort' ? ('fail' as const) : ('pass' as const),
      at: b.at,
      took_ms: ev?.took_ms,
      detail: b.reason,
    };
  });
}

/** One case per named message (lava-send / lava-wait / lava-sync): passed when every wait on it was released. */
export function syncResults(events: readonly ClusterEvent[], ended: boolean): StepResult[] {
  const byMsg = new Map<string, { senders: Set<string>; waits: number; released: number; first: number; at: number }>();
  for (const e of events) {
    if (e.type !== 'message') continue;
    const s = byMsg.get(e.msg) ?? { senders: new Set<string>(), waits: 0, released: 0, first: e.at, at: e.at };
    if (e.op === 'send') s.senders.add(e.job);
    if (e.op === 'wait' || e.mode !== undefined) s.waits++;
    s.released += e.released?.length ?? 0;
    s.at = e.at;
    byMsg.set(e.msg, s);
  }
  return [...byMsg].map(([msg, s]) => {
    const done = s.released >= s.waits;
    return {
      name: `multinode-sync-${msg}`,
      kind: 'sync' as const,
      result: done ? ('pass' as const) : ended ? ('fail' as const) : ('pending' as const),
      at: s.at,
      took_ms: s.at - s.first,
      detail: `sent by ${[...s.senders].join(', ') || 'nobody'}; ${s.released} of ${s.waits} waits released`,
    };
  });
}
