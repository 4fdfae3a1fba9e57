import type { NatsConnection } from 'nats';
import type { Subjects } from '../src/bus/subjects';
import type { ClusterStore } from '../src/cluster/store';
import type { ReplicationGuard } from '../src/core/replication';
import type { QueueSet } from '../src/queue/queues';
import type { NodeJob } from '../src/split/node-job';
import type { Violation } from './checker';
import type { ChaosEnv } from './env';
import type { HistoryLine } from './history';
import type { ClusterPlan } from './plan';
import type { ClusterRecord, RetentionTarget } from './records';

/** What a campaign's rounds share: its settings, its servers and clients, what it found so far. */

export const HEARTBEAT_MS = 500;
export const TIMEOUT_MS = 6000;
export const SWEEP_MS = 1000;
/** A round that has not ended after this is a liveness failure in itself. */
export const ROUND_LIMIT_MS = 90_000;

export interface RoundViolation extends Violation {
  round: number;
}

export interface CampaignResult {
  seed: number;
  rounds: number;
  clusters: number;
  nodes: number;
  faults: Record<string, number>;
  reportsChecked: number;
  /** Node job BullMQ records checked against how their nodes ended. */
  recordsChecked: number;
  /** Ended clusters seen gone after retention. */
  retentionChecked: number;
  /** Traces of those clusters found when they had just settled (what retention had to remove). */
  tracesBefore: number;
  /** Admission snapshots (machines, reservations, assignments) read and checked while rounds ran. */
  snapshotsChecked: number;
  /** Clusters run by machines through admission: admitted, and ended not_admitted. */
  machineClusters: { total: number; admitted: number; notAdmitted: number };
  violations: RoundViolation[];
  ms: number;
  /** `--ha`: for each primary killed or frozen, ms from the failure to the sentinels' `+switch-master`. */
  failoverMs: number[];
}

export interface RoundContext {
  env: ChaosEnv;
  store: ClusterStore;
  queues: QueueSet;
  /** The harness's own submits wait for the replicas too (`--ha`). */
  replication: ReplicationGuard;
  nc: NatsConnection;
  subjects: Subjects;
  check: { boundMs: number; recoveryMs: number; heartbeatMs: number; timeoutMs: number; sweepMs: number };
  result: CampaignResult;
  /** Cluster ids already checked for integrity. */
  known: Set<string>;
  log: (line: string) => void;
  /** When the last fault of an earlier round ended, epoch ms. */
  lastFaultEnd?: number;
  retention: { retentionMs: number; sweepMs: number; recoveryMs: number };
  endGraceMs: number;
  /** Ended (or ending) clusters not yet seen gone after retention. */
  pending: { target: RetentionTarget; round: number; shown: HistoryLine[] }[];
  /** Dead machines' agents still unwinding (their `done` retried on a closed connection). */
  unwinding: Promise<void>[];
}

/** A cluster the harness submitted in a round, and what was read of it once it settled. */
export interface Submitted {
  cid: string;
  jobs: NodeJob[];
  plan: ClusterPlan;
  lives: Promise<void>[];
  settled?: Promise<void>;
  record?: ClusterRecord;
  target?: RetentionTarget;
}

/** Counts one more fault (or workload twist) of `kind`. */
export function countFault(result: CampaignResult, kind: string, n = 1): void {
  result.faults[kind] = (result.faults[kind] ?? 0) + n;
}
