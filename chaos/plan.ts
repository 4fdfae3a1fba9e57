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
}

export interface PlanOptions {
  maxClusters: number;
  maxFaults: number;
  faultKinds: readonly FaultKind[];
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
  return { round, clusters, faults };
}
