import { z } from 'zod';
import { idSchema } from './messages';
import type { NodeJob } from '../split/node-job';
import { ProgramRunSchema } from '../results/node-end';

/**
 * Messages between the node agent and the dispatcher (DESIGN §5,
 * `<prefix>.queue.<testbox>.take`, plus `.done`, see docs/architecture.md).
 */

/** node -> dispatcher: give me the next node job of this testbox. */
export const TakeRequestSchema = z.strictObject({
  v: z.literal(1),
  /** Who asks, for the dispatcher's log (host name and pid). */
  agent: z.string().max(256).optional(),
  /**
   * Admission (DESIGN §9): the machine that asks (`--machine-id`). Absent: the
   * first-come-first-served hand-out of older agents and `--admission fifo`.
   */
  machine: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_.:@+-]+$/, 'letters, digits and _ . : @ + - only')
    .optional(),
  /** The agent process (random per start): a taken job is handed again only to the process that took it. */
  session: z.string().min(1).max(64).optional(),
  /** The node job this machine ran last: it is over, whatever became of its `done`. */
  last: z.string().max(128).optional(),
  /** How long the machine's lease lasts from this request, ms (1 s to 1 h). */
  lease_ms: z.number().int().min(1000).max(3_600_000).optional(),
  /** Only renew the lease of a machine that runs node job `last`. */
  renew: z.boolean().optional(),
  /** The agent stops: the machine is gone at once (its reservation released). */
  leave: z.boolean().optional(),
});
export type TakeRequest = z.infer<typeof TakeRequestSchema>;

/** dispatcher -> node: a job and the lock token that ends it, or no job. */
/**
 * `retryable`: Redis could not serve it just now (out of memory, restarting), or (`in_use`) the machine id is held by
 * another agent process whose lease still lives (a restart passes once it lapses; a second agent never does): ask again.
 */
export type TakeReply = { ok: true; job: NodeJob; lock: string } | { ok: true; job: null } | { ok: false; reason: string; retryable?: true; in_use?: true };

/** node -> dispatcher: the node job ended. */
export const DoneRequestSchema = z.strictObject({
  v: z.literal(1),
  job: idSchema('job id'),
  lock: z.string().min(1).max(128),
  ok: z.boolean(),
  /** The life's outcome (`passed`, `test_failed`, ...). */
  outcome: z.string().max(64),
  reason: z.string().max(1024).optional(),
  /** Each program the node ran: exit and duration (for the cluster's result). Absent from older agents. */
  programs: z.array(ProgramRunSchema).max(1000).optional(),
  /** Who ran it (the agent's host:pid or machine id). */
  machine: z.string().max(256).optional(),
});
export type DoneRequest = z.infer<typeof DoneRequestSchema>;

export type DoneReply = { ok: true } | { ok: false; reason: string; retryable?: true };

const Scalarish: z.ZodType<unknown> = z.unknown();

/** A node job as the agent receives it: checked once, at the edge. */
export const NodeJobSchema = z.object({
  job_id: idSchema('job id'),
  cluster: idSchema('cluster id'),
  token: z.string().min(1).max(256),
  /** Absent in node jobs submitted before named messages existed: lava-group then lists this node only. */
  group: z.record(idSchema('job id'), z.string().max(4096)).optional(),
  host: idSchema('host'),
  testbox: idSchema('testbox'),
  queue: idSchema('testbox'),
  node_roles: z.string().min(1).max(4096),
  direct_macs: z.string().max(4096),
  direct_ips: z.string().max(4096),
  nr_nic: z.number(),
  cluster_spec: z.string().max(256),
  standalone: z.boolean(),
  params: z.record(z.string(), Scalarish),
  programs: z.array(z.object({ name: z.string().min(1).max(128), role: z.string().min(1).max(128), params: z.record(z.string(), Scalarish) })).max(1000),
  vars: z.record(z.string(), Scalarish),
  cluster_timeout_ms: z.number().int().positive(),
  heartbeat_interval_ms: z.number().int().min(10).max(3_600_000),
});

export function parseNodeJob(value: unknown): NodeJob {
  const job = NodeJobSchema.parse(value);
  return { ...job, group: job.group ?? { [job.job_id]: job.node_roles } } as NodeJob;
}
