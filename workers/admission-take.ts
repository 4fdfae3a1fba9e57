import { randomUUID } from 'node:crypto';
import { Job } from 'bullmq';
import type { Worker } from 'bullmq';
import type { AdmissionStore } from '../src/admission/admission-store';
import { DEFAULT_MACHINE_LEASE_MS } from '../src/admission/settings';
import type { TakeReply, TakeRequest } from '../src/bus/queue-messages';
import type { NodeJob } from '../src/split/node-job';

/** A node job admission handed to a machine, for the dispatcher to hold (extend its lock) and reply with. */
export interface AdmittedJob {
  admitted: true;
  job: Job<NodeJob>;
  lock: string;
  /** Handed now for the first time (not a retried take). */
  fresh: boolean;
  /** From submit to admission, ms. */
  waitedMs: number;
}

/** A refusal; one for a machine id in use by another agent may pass once that agent's lease lapses (a restart): retryable. */
function refused(r: { reason: string; in_use?: boolean }): TakeReply {
  return r.in_use ? { ok: false, reason: r.reason, retryable: true, in_use: true } : { ok: false, reason: r.reason };
}

/**
 * A take from an agent that names its machine (DESIGN §9): one admit-take.lua
 * call renews the machine's lease, runs an admission pass and moves the node
 * job assigned to this machine, if any, to active; a retried take gets the
 * same job and lock back. `renew` only renews the lease of a running machine.
 */
export async function admissionTake(
  admission: AdmissionStore,
  testbox: string,
  req: TakeRequest & { machine: string },
  workerFor: (testbox: string) => Worker<NodeJob>,
): Promise<AdmittedJob | TakeReply> {
  const args = { machine: req.machine, testbox, leaseMs: req.lease_ms ?? DEFAULT_MACHINE_LEASE_MS, session: req.session ?? req.machine, last: req.last ?? '' };
  if (req.renew || req.leave) {
    const r = await (req.leave ? admission.leave(args) : admission.renew(args));
    return r.ok ? { ok: true, job: null } : refused(r);
  }
  const r = await admission.take({ ...args, lock: randomUUID() });
  if (!r.ok) return refused(r);
  if (r.state !== 'running') return { ok: true, job: null };
  const job = (await Job.fromId(workerFor(testbox), r.job)) as Job<NodeJob> | undefined;
  if (!job?.id) return { ok: false, reason: `node job ${r.job} assigned to machine ${req.machine} is missing from queue ${r.queue}`, retryable: true };
  return { admitted: true, job, lock: r.lock, fresh: r.fresh, waitedMs: r.waited_ms };
}
