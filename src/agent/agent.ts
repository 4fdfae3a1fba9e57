import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { AdmissionMode, DEFAULT_MACHINE_LEASE_MS } from '../admission/settings';
import { ErrorCode as NatsErrorCode } from 'nats';
import type { NatsConnection, NatsError } from 'nats';
import { decodeText, encodeJson } from '../bus/connect';
import type { Subjects } from '../bus/subjects';
import { NodeClient } from '../client/node-client';
import { errorMessage } from '../core/errors';
import type { NodeJob } from '../split/node-job';
import { pause } from '../core/pause';
import { runLife } from './life';
import { appendLkpStats } from './lkp-stats';
import { EXIT_CODES, EXIT_NO_JOB, Outcome } from './outcome';
import type { LifeResult } from './outcome';
import type { Output } from './output';
import type { DoneReply, DoneRequest, TakeReply, TakeRequest } from '../bus/queue-messages';
import { parseNodeJob } from '../bus/queue-messages';
import { ProcessRunner } from './runner';
import type { ProgramRunner } from './runner';

export interface AgentOptions {
  testbox: string;
  /** Real path of the scripts tree. */
  scriptsRoot: string;
  /** Run one node job, then exit with its code. Default false: take jobs until stopped. */
  once?: boolean;
  output: Output;
  /** The address to report. Default: first address of `hostname -I`. */
  ip?: string;
  /** Hosts file to append `IP ROLE` lines to. Default: none. */
  etcHosts?: string;
  /** Pause between take requests while the queue is empty, ms. Default 1000. */
  pollMs?: number;
  /** With `once`: give up when no job came within this long, ms. Default: wait forever. */
  takeTimeoutMs?: number;
  /** Stops the agent: a running job is aborted and reported. */
  signal?: AbortSignal;
  runner?: ProgramRunner;
  /** Append lkp's own stats of each job's end to `DIR/last_state` (`--result-root`). Default: none. */
  resultRoot?: string;
  /** How long one request waits for its reply, ms. Default 3000. */
  requestTimeoutMs?: number;
  /** How node jobs reach this machine (DESIGN §9). Default `admission`. */
  admission?: AdmissionMode;
  /** This machine's id for admission. Default: host name and testbox (`HOST-TESTBOX`). */
  machineId?: string;
  /** The machine's lease, renewed by every take and, while a job runs, every third of it, ms. Default 15 000. */
  leaseMs?: number;
  /**
   * Runs a node job's life in place of runLife and the program runner (the
   * chaos campaign's recording nodes). Default: runLife.
   */
  life?: (job: NodeJob, signal: AbortSignal | undefined) => Promise<LifeResult>;
}

/** The default machine id: host name and testbox, so two agents on one host are two machines. */
export function defaultMachineId(testbox: string): string {
  return `${os.hostname().replace(/[^A-Za-z0-9_.:@+-]/g, '_')}-${testbox}`;
}

/**
 * The node agent: takes node jobs of one testbox from the dispatcher
 * (`<prefix>.queue.<testbox>.take`), runs each job's life, and tells the
 * dispatcher how it ended (`.done`), so the BullMQ job ends completed or
 * failed. Returns the exit code (the last job's, with `once`).
 */
export async function runAgent(nc: NatsConnection, subjects: Subjects, opts: AgentOptions): Promise<number> {
  const out = opts.output;
  const pollMs = opts.pollMs ?? 1000;
  const timeout = opts.requestTimeoutMs ?? 3000;
  const me = `${os.hostname()}:${process.pid}`;
  const started = Date.now();
  const admit = (opts.admission ?? AdmissionMode.Admission) === AdmissionMode.Admission;
  const machine = opts.machineId ?? defaultMachineId(opts.testbox);
  const session = randomBytes(8).toString('hex');
  const leaseMs = opts.leaseMs ?? DEFAULT_MACHINE_LEASE_MS;
  let lastJob = '';
  const takeRequest = (extra: { renew?: true; leave?: true } = {}): TakeRequest => (admit ? { v: 1, agent: me, machine, session, last: lastJob, lease_ms: leaseMs, ...extra } : { v: 1, agent: me });
  try {
    return await loop();
  } finally {
    // The machine is gone at once, not at its lease's lapse: nothing waits for it (best effort).
    if (admit) await nc.request(subjects.take(opts.testbox), encodeJson(takeRequest({ leave: true })), { timeout }).catch(() => undefined);
  }

  async function loop(): Promise<number> {
    let said = '';
    const say = (line: string): void => {
      if (line !== said) out.notice(line);
      said = line;
    };
    let last = 0;
    // Since when the dispatcher has said this machine id is in use by another agent (0: it has not).
    let inUseSince = 0;
    while (!opts.signal?.aborted) {
      let reply: TakeReply;
      try {
        const msg = await nc.request(subjects.take(opts.testbox), encodeJson(takeRequest()), { timeout });
        reply = JSON.parse(decodeText(msg.data)) as TakeReply;
      } catch (err) {
        const code = (err as NatsError).code;
        if (code === NatsErrorCode.PermissionsViolation) {
          // Another testbox's credentials (or a wrong inbox prefix): no retry makes this work.
          out.notice(
            `the NATS server refused this node's take on ${subjects.take(opts.testbox)}: ${errorMessage(err)}; these credentials may not take node jobs of testbox ${opts.testbox} (see cluster-sync nats-config)`,
          );
          return EXIT_CODES.setup_error;
        }
        if (code === NatsErrorCode.NoResponders) say(`no dispatcher is listening on ${subjects.take(opts.testbox)} (is "cluster-sync worker" running?); retrying`);
        else say(`take: ${errorMessage(err)}; retrying`);
        reply = { ok: true, job: null };
      }
      if (!reply.ok && reply.in_use) {
        // Another agent holds this machine id. A restart of this machine passes once the old process's lease
        // lapses (one lease); an agent still refused after two leases is a second agent with the same id.
        inUseSince ||= Date.now();
        if (Date.now() - inUseSince > 2 * leaseMs) {
          out.notice(`the dispatcher refused: ${reply.reason}; still so after ${2 * leaseMs} ms (two leases), so another agent runs as machine ${machine}`);
          return EXIT_CODES.setup_error;
        }
        say(`the dispatcher refused machine ${machine} for now: ${reply.reason}; asking again until that agent's lease lapses`);
        await pause(pollMs, opts.signal);
        continue;
      }
      inUseSince = 0;
      if (!reply.ok) {
        if (reply.retryable) {
          // Redis could not serve the take just now (out of memory, restarting): a passing fault, not this node's.
          say(`the dispatcher could not hand out a job just now (${reply.reason}); retrying`);
          await pause(pollMs, opts.signal);
          continue;
        }
        say(`the dispatcher refused: ${reply.reason}`);
        return EXIT_CODES.setup_error;
      }
      if (reply.job === null) {
        if (opts.once && opts.takeTimeoutMs !== undefined && Date.now() - started > opts.takeTimeoutMs) {
          out.notice(`no node job for testbox ${opts.testbox} within ${opts.takeTimeoutMs} ms`);
          return EXIT_NO_JOB;
        }
        if (said === '') say(`waiting for a node job of testbox ${opts.testbox}${admit ? ` (machine ${machine})` : ''}`);
        await pause(pollMs, opts.signal);
        continue;
      }
      said = '';
      const lock = reply.lock;
      let result: LifeResult;
      let jobId = '?';
      // While the job runs, the machine's lease is renewed (admission): it stays known as running, not gone.
      let renewer: NodeJS.Timeout | undefined;
      try {
        const job = parseNodeJob(reply.job);
        jobId = job.job_id;
        lastJob = jobId;
        if (admit) {
          renewer = setInterval(
            () => void nc.request(subjects.take(opts.testbox), encodeJson(takeRequest({ renew: true })), { timeout }).catch(() => undefined),
            Math.max(200, Math.floor(leaseMs / 3)),
          );
        }
        result = await runOne(nc, subjects, job, opts);
      } catch (err) {
        result = { outcome: Outcome.SetupError, reason: `the node job is not valid: ${errorMessage(err)}` };
        if (typeof (reply.job as { job_id?: unknown }).job_id === 'string') jobId = lastJob = (reply.job as { job_id: string }).job_id;
      } finally {
        clearInterval(renewer);
      }
      if (opts.resultRoot !== undefined) {
        try {
          appendLkpStats(opts.resultRoot, result);
        } catch (err) {
          out.notice(`could not append to ${opts.resultRoot}/last_state: ${errorMessage(err)}`);
        }
      }
      out.step({ at: Date.now(), cluster: reply.job.cluster, job: jobId, role: reply.job.node_roles, step: 'end', result: result.outcome, detail: result.reason || undefined });
      await sendDone(
        nc,
        subjects,
        opts.testbox,
        { v: 1, job: jobId, lock, ok: result.outcome === Outcome.Passed, outcome: result.outcome, reason: result.reason || undefined, programs: result.programs, machine },
        out,
        timeout,
      );
      last = EXIT_CODES[result.outcome];
      if (opts.once) return last;
    }
    return last;
  }
}

async function runOne(nc: NatsConnection, subjects: Subjects, job: NodeJob, opts: AgentOptions): Promise<LifeResult> {
  if (opts.life) return opts.life(job, opts.signal);
  const client = new NodeClient(nc, subjects, { cluster: job.cluster, job: job.job_id, token: job.token }, { onNotice: (l) => opts.output.notice(`${job.job_id}: ${l}`) });
  try {
    return await runLife(job, client, {
      scriptsRoot: opts.scriptsRoot,
      runner: opts.runner ?? new ProcessRunner(),
      output: opts.output,
      ip: opts.ip,
      etcHosts: opts.etcHosts,
      signal: opts.signal,
    });
  } finally {
    await client.close();
  }
}

/**
 * How long the agent keeps asking the dispatcher to record a node job's end while nobody answers or
 * Redis refuses (retryable): past a Redis failover (seconds), well inside the workers' end grace
 * (default 60 s), after which the dispatcher fails the job itself.
 */
const DONE_PATIENCE_MS = 30_000;

async function sendDone(nc: NatsConnection, subjects: Subjects, testbox: string, done: DoneRequest, out: Output, timeout: number): Promise<void> {
  const giveUp = Date.now() + DONE_PATIENCE_MS;
  for (let attempt = 1; ; attempt++) {
    const last = Date.now() >= giveUp;
    try {
      const msg = await nc.request(subjects.done(testbox), encodeJson(done), { timeout });
      const reply = JSON.parse(decodeText(msg.data)) as DoneReply;
      if (!reply.ok && reply.retryable && !last) throw new Error(reply.reason);
      if (!reply.ok) out.notice(`the dispatcher could not record the end of ${done.job}: ${reply.reason}`);
      return;
    } catch (err) {
      out.notice(`done ${done.job}: ${errorMessage(err)} (attempt ${attempt})`);
      if (last) return;
      await pause(Math.min(200 * 2 ** attempt, 2000));
    }
  }
}
