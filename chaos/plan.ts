import type { Barrier } from '../src/core/states';
import { Prng } from './prng';

/**
 * A round's schedule, drawn from the seed before anything runs: the
 * clusters, what each node does, and which faults hit when. Drawing it all
 * up front keeps the schedule a function of the seed alone, whatever the
 * timing of the run.
 */
export type Behaviour = 'pass' | 'fail' | 'hang' | 'die';

export interface NodePlan {
  roles: string;
  behaviour: Behaviour;
  /** The barrier where a fail, hang or death happens. */
  at: Barrier;
  /** Talks to the legacy HTTP endpoint as lkp-tests' shell functions do, instead of the NodeClient. */
  legacy: boolean;
  /** Sends each wait report a second time with the same id (a retry racing its answer). */
  duplicate: boolean;
  /** After each answer, sends its previous report again with the same id (reordered, late copy). */
  reorder: boolean;
  /** After the cluster ended, sends one more report with a new id. */
  late: boolean;
  /** Delay before the node starts, ms. */
  startMs: number;
}

export interface ClusterPlan {
  nodes: NodePlan[];
  /** Delay before the cluster is submitted, ms. */
  submitMs: number;
  /**
   * Its nodes run on the round's machines (admission agents, DESIGN §9): node i
   * needs a machine of testbox `machineTestboxes[i]` (an index into the round's
   * `machines.testboxes`). Absent: each node takes its own node job first come,
   * first served, or is a legacy node.
   */
  machineTestboxes?: number[];
}

/** What happens to a machine, from the round's start, ms. */
export interface MachineEvent {
  atMs: number;
  /** come: an agent starts; leave: it stops after its current job and says so; die: it stops at once, silent (no goodbye, no heartbeat). */
  kind: 'come' | 'leave' | 'die';
}

export interface MachinePlan {
  id: string;
  /** Index into the round's `machines.testboxes`. */
  testbox: number;
  events: MachineEvent[];
}

/** The round's lab: testboxes, the machines on them (some testbox may have none), and the clusters' admit timeout. */
export interface MachinesPlan {
  testboxes: string[];
  machines: MachinePlan[];
  admitTimeoutMs: number;
}

export const FAULT_KINDS = ['worker-kill', 'worker-stop', 'nats-restart', 'redis-restart', 'client-pause', 'scheduler-kill-submit', 'redis-oom'] as const;
/**
 * `--ha` (Redis behind Sentinel, a NATS cluster): the primary SIGKILLed (and
 * restarted, to rejoin as a replica), the primary frozen past the sentinels'
 * down-after (SIGSTOP, then SIGCONT), one NATS server of three SIGKILLed (and
 * restarted); with the faults of the single-server run that still apply.
 */
export const HA_FAULT_KINDS = ['primary-kill', 'primary-stop', 'nats-server-kill', 'worker-kill', 'worker-stop', 'client-pause', 'scheduler-kill-submit'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number] | (typeof HA_FAULT_KINDS)[number];

export interface FaultPlan {
  kind: FaultKind;
  /** When, from the round's start, ms. */
  atMs: number;
  /** How long it lasts (stop, pause), ms. */
  durationMs: number;
  /** Which worker, cluster or node (modulo how many there are). */
  target: number;
}

export interface RoundPlan {
  round: number;
  clusters: ClusterPlan[];
  faults: FaultPlan[];
  /** The machines of the round's admission clusters (absent with `maxMachineClusters` 0). */
  machines?: MachinesPlan;
}

export interface PlanOptions {
  maxClusters: number;
  maxFaults: number;
  faultKinds: readonly FaultKind[];
  /** Clusters per round that run on machines through admission, at most (0: none). Default 0. */
  maxMachineClusters?: number;
}

const ROLES = ['server', 'client', 'server client'];
const AT: Barrier[] = ['start', 'ready', 'finish'];

/** Round r of seed s: its own PRNG stream, so rounds can be replayed alone. */
export function planRound(seed: number, round: number, options: PlanOptions): RoundPlan {
  const rng = new Prng((seed * 1_000_003 + round) >>> 0);
  const clusters: ClusterPlan[] = [];
  const n = rng.int(1, options.maxClusters);
  for (let c = 0; c < n; c++) {
    const size = rng.int(2, 8);
    const nodes: NodePlan[] = [];
    // Most clusters pass; some have one node that fails, hangs or dies.
    const odd = rng.chance(0.3) ? rng.int(0, size - 1) : -1;
    const oddKind = rng.pick<Behaviour>(['fail', 'hang', 'die']);
    for (let i = 0; i < size; i++) {
      const legacy = rng.chance(0.15);
      let behaviour: Behaviour = i === odd ? oddKind : 'pass';
      if (legacy && behaviour === 'die') behaviour = 'hang'; // lkp's shell client sends no heartbeats: a dead one is a silent one
      nodes.push({
        roles: rng.pick(ROLES),
        behaviour,
        at: rng.pick(AT),
        legacy,
        duplicate: !legacy && rng.chance(0.15),
        reorder: !legacy && rng.chance(0.15),
        late: !legacy && rng.chance(0.1),
        startMs: rng.int(0, 400),
      });
    }
    // The job has a server and a client block; a spec must carry both roles somewhere.
    if (!nodes.some((x) => x.roles.includes('server'))) nodes[0]!.roles = 'server client';
    if (!nodes.some((x) => x.roles.includes('client'))) nodes[nodes.length - 1]!.roles = 'server client';
    clusters.push({ nodes, submitMs: rng.int(0, 1500) });
  }
  const faults: FaultPlan[] = [];
  const nf = options.faultKinds.length === 0 ? 0 : rng.int(0, options.maxFaults);
  for (let f = 0; f < nf; f++) {
    faults.push({ kind: rng.pick(options.faultKinds), atMs: rng.int(0, 3000), durationMs: rng.int(300, 2500), target: rng.int(0, 1000) });
  }
  faults.sort((a, b) => a.atMs - b.atMs);
  const machines = (options.maxMachineClusters ?? 0) > 0 ? planMachines(seed, round, options.maxMachineClusters ?? 0, clusters) : undefined;
  return { round, clusters, faults, ...(machines ? { machines } : {}) };
}

/**
 * The round's machines and their clusters, from a PRNG stream of their own
 * (so the rest of a seed's schedule is what it was before machines existed):
 * three testboxes, the first two with 1-3 machines, the third with 0-2 (with
 * none, its clusters end not_admitted at their admit timeout); machines that
 * come late, leave after their job, or die (their lease lapses), and some that
 * come back; 1- to 3-node clusters on those testboxes, appended to `clusters`.
 */
function planMachines(seed: number, round: number, max: number, clusters: ClusterPlan[]): MachinesPlan {
  const rng = new Prng((seed * 1_000_003 + round) ^ 0x6d616368);
  const testboxes = [0, 1, 2].map((k) => `m${round}x${k}`);
  const machines: MachinePlan[] = [];
  for (let tb = 0; tb < 3; tb++) {
    const count = tb < 2 ? rng.int(1, 3) : rng.chance(0.35) ? 0 : rng.int(1, 2);
    for (let i = 0; i < count; i++) {
      const events: MachineEvent[] = [{ atMs: rng.chance(0.7) ? 0 : rng.int(300, 4000), kind: 'come' }];
      const fate = rng.next();
      if (fate < 0.45) {
        const kind = fate < 0.2 ? 'leave' : 'die';
        const at = (events[0] as MachineEvent).atMs + rng.int(500, 6000);
        events.push({ atMs: at, kind });
        if (rng.chance(0.4)) events.push({ atMs: at + rng.int(500, 4000), kind: 'come' });
      }
      machines.push({ id: `m${round}x${tb}n${i}`, testbox: tb, events });
    }
  }
  const n = rng.int(1, max);
  for (let c = 0; c < n; c++) {
    const size = rng.int(1, 3);
    const odd = rng.chance(0.3) ? rng.int(0, size - 1) : -1;
    const oddKind = rng.pick<Behaviour>(['fail', 'hang', 'die']);
    const nodes: NodePlan[] = [];
    const tbs: number[] = [];
    for (let i = 0; i < size; i++) {
      tbs.push(rng.int(0, 2));
      nodes.push({
        roles: size === 1 ? 'server client' : rng.pick(ROLES),
        behaviour: i === odd ? oddKind : 'pass',
        at: rng.pick(AT),
        legacy: false,
        duplicate: rng.chance(0.15),
        reorder: rng.chance(0.15),
        late: rng.chance(0.1),
        // A node holds its machine a while before its first report: machines are busy, clusters wait.
        startMs: rng.int(200, 2500),
      });
    }
    if (!nodes.some((x) => x.roles.includes('server'))) nodes[0]!.roles = 'server client';
    if (!nodes.some((x) => x.roles.includes('client'))) nodes[nodes.length - 1]!.roles = 'server client';
    clusters.push({ nodes, submitMs: rng.int(0, 4000), machineTestboxes: tbs });
  }
  return { testboxes, machines, admitTimeoutMs: 5000 };
}
