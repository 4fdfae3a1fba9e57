import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { runAgent } from '../src/agent/agent';
import { Outcome } from '../src/agent/outcome';
import type { LifeResult } from '../src/agent/outcome';
import { Output } from '../src/agent/output';
import type { Subjects } from '../src/bus/subjects';
import { errorMessage } from '../src/core/errors';
import type { NodeJob } from '../src/split/node-job';
import { sleep, within } from './env';
import type { History } from './history';
import { RecordingClient, clientLife } from './nodes';
import type { NodeContext } from './nodes';
import type { MachinesPlan, NodePlan } from './plan';

/**
 * The machines of a chaos round (DESIGN §9): each is the real node agent
 * (`runAgent`, admission take, lease renewals while it runs, `leave` when it
 * stops) on its own NATS connection, with the node's life played by the
 * campaign's recording client for whatever node job admission hands it.
 * Machines come, leave after their current job, or die (their connection
 * closed: no goodbye, no heartbeat, their lease lapses), as the round's plan
 * says. What each machine ran, and when, is kept for the checker.
 */

/** A node job a machine ran: from the take's answer to the end of the node's life, or the machine's death. */
export interface MachineRun {
  machine: string;
  job: string;
  from: number;
  to?: number;
}

export const MACHINE_LEASE_MS = 2000;
const POLL_MS = 100;

interface Planned {
  plan: NodePlan;
  index: number;
  ctx: NodeContext;
  taken: boolean;
  done: () => void;
  over: Promise<void>;
}

interface Incarnation {
  id: string;
  testbox: string;
  nc: NatsConnection;
  stop: AbortController;
  done: Promise<number>;
  dead: boolean;
  /** Its agent returned. */
  finished: boolean;
  /** Resolves when the machine dies: its node's life stops being waited for. */
  died: Promise<void>;
  kill: () => void;
  running?: { job: NodeJob; run: MachineRun; planned: Planned; client: RecordingClient };
}

export interface MachineLabOptions {
  natsServers: string[];
  subjects: Subjects;
  history: History;
  onClient: (c: RecordingClient) => void;
}

export class MachineLab {
  readonly runs: MachineRun[] = [];
  private readonly jobs = new Map<string, Planned>();
  private readonly current = new Map<string, Incarnation>();
  private readonly everyone: Incarnation[] = [];
  private stopping = false;
  private events: Promise<void> = Promise.resolve();

  constructor(
    private readonly plan: MachinesPlan,
    private readonly o: MachineLabOptions,
  ) {}

  /** The id prefix of this round's machines (what the checker looks at). */
  static prefix(round: number): string {
    return `m${round}x`;
  }

  /**
   * A node job of the round that runs on a machine: its node does `plan` once
   * a machine takes it. Resolves when its life is over (or its machine died),
   * or when its cluster ended before any machine took it.
   */
  node(job: string, plan: NodePlan, index: number, ctx: NodeContext): Promise<void> {
    let done: () => void = () => undefined;
    const over = new Promise<void>((resolve) => (done = resolve));
    const p: Planned = { plan, index, ctx, taken: false, done, over };
    this.jobs.set(job, p);
    return (async () => {
      await Promise.race([over, ctx.ended()]);
      if (p.taken) await over;
    })();
  }

  /** Plays the machines' events from `t0` (epoch ms) until stop(). */
  start(t0: number): void {
    const all = this.plan.machines.flatMap((m) => m.events.map((e) => ({ ...e, m }))).sort((a, b) => a.atMs - b.atMs);
    this.events = (async () => {
      for (const e of all) {
        const wait = t0 + e.atMs - Date.now();
        if (wait > 0) await sleep(wait);
        if (this.stopping) return;
        const id = e.m.id;
        const inc = this.current.get(id);
        if (e.kind === 'come') await this.come(id, this.plan.testboxes[e.m.testbox] as string);
        else if (inc && !inc.dead && !inc.stop.signal.aborted) {
          this.o.history.add({ kind: 'machine', what: e.kind, machine: id, detail: inc.running ? `running ${inc.running.job.job_id}` : 'idle' });
          if (e.kind === 'leave') inc.stop.abort();
          else this.die(inc, true);
        }
      }
    })().catch((err: unknown) => void this.o.history.add({ kind: 'note', detail: `machine events failed: ${errorMessage(err)}` }));
  }

  /**
   * Every machine leaves (after its job). Dead ones are not waited for here: their agents give up
   * their `done` on the closed connection within about 12 s; `unwinding` resolves then.
   */
  async stop(): Promise<{ unwinding: Promise<void> }> {
    this.stopping = true;
    await this.events;
    for (const inc of this.current.values()) inc.stop.abort();
    const live = this.everyone.filter((i) => !i.dead);
    await within(Promise.all(live.map((i) => i.done.catch(() => 0))), 20_000);
    // One whose node's life still waits (for an answer that will not come now) dies: its agent then returns.
    for (const i of live) if (!i.finished) this.die(i, false);
    await Promise.all(this.everyone.map((i) => i.nc.close().catch(() => undefined)));
    return { unwinding: Promise.all(this.everyone.filter((i) => i.dead).map((i) => i.done.catch(() => 0))).then(() => undefined) };
  }

  private async come(id: string, testbox: string): Promise<void> {
    const before = this.current.get(id);
    if (before && !before.dead && !before.stop.signal.aborted) return;
    // One agent per machine id at a time: a machine that is leaving finishes its job first.
    if (before && !before.dead)
      await within(
        before.done.catch(() => 0),
        20_000,
      );
    if (this.stopping) return;
    // A machine that comes while NATS restarts waits for it (as an agent under systemd would start again).
    const nc = await connect({ servers: this.o.natsServers, maxReconnectAttempts: -1, reconnectTimeWait: 100, waitOnFirstConnect: true, name: `chaos-machine-${id}` });
    const stop = new AbortController();
    let kill: () => void = () => undefined;
    const died = new Promise<void>((resolve) => (kill = resolve));
    const inc: Incarnation = { id, testbox, nc, stop, done: Promise.resolve(0), dead: false, finished: false, died, kill };
    inc.done = runAgent(nc, this.o.subjects, {
      testbox,
      scriptsRoot: '/nonexistent',
      output: new Output(() => undefined, true),
      ip: '127.0.0.1',
      pollMs: POLL_MS,
      signal: stop.signal,
      machineId: id,
      leaseMs: MACHINE_LEASE_MS,
      requestTimeoutMs: 1000,
      life: (job) => this.life(inc, job),
    })
      .catch((err: unknown) => {
        this.o.history.add({ kind: 'note', machine: id, detail: `agent failed: ${errorMessage(err)}` });
        return -1;
      })
      .finally(() => (inc.finished = true));
    this.current.set(id, inc);
    this.everyone.push(inc);
    this.o.history.add({ kind: 'machine', what: 'come', machine: id, detail: testbox });
  }

  /** The machine dies: no goodbye, no more heartbeats or renewals; the node it ran dies with it. */
  private die(inc: Incarnation, byEvent: boolean): void {
    inc.dead = true;
    inc.kill();
    const r = inc.running;
    inc.running = undefined;
    if (r) {
      if (byEvent) this.o.history.add({ kind: 'die', cluster: r.job.cluster, job: r.job.job_id, machine: inc.id, detail: 'its machine died' });
      void r.client.close();
      r.run.to = Date.now();
      r.planned.done();
    }
    inc.stop.abort();
    void inc.nc.close().catch(() => undefined);
  }

  private async life(inc: Incarnation, job: NodeJob): Promise<LifeResult> {
    const h = this.o.history;
    const p = this.jobs.get(job.job_id);
    const run: MachineRun = { machine: inc.id, job: job.job_id, from: Date.now() };
    this.runs.push(run);
    h.add({ kind: 'take', cluster: job.cluster, job: job.job_id, machine: inc.id, detail: `${inc.testbox}${p ? '' : ': not a node job of this round!'}${p?.taken ? ': taken before!' : ''}` });
    if (!p || p.taken || inc.dead) {
      run.to = Date.now();
      return { outcome: Outcome.SetupError, reason: 'chaos: not this machine to run' };
    }
    p.taken = true;
    const client = new RecordingClient(inc.nc, this.o.subjects, { cluster: job.cluster, job: job.job_id, token: job.token }, h);
    inc.running = { job, run, planned: p, client };
    let result: LifeResult | undefined;
    try {
      await client.start();
      this.o.onClient(client);
      // A dead machine's node is not waited for (a wait may never be answered on its closed connection).
      const life = await Promise.race([clientLife(client, p.plan, p.index, p.ctx), inc.died.then(() => 'dead' as const)]);
      result = life === 'dead' ? undefined : life;
    } finally {
      await client.close().catch(() => undefined);
    }
    if (inc.dead) return { outcome: Outcome.SetupError, reason: 'chaos: the machine died' };
    inc.running = undefined;
    if (result === undefined) {
      // The node died (its plan): its machine with it.
      run.to = Date.now();
      this.die(inc, false);
      p.done();
      return { outcome: Outcome.SetupError, reason: 'chaos: the node died' };
    }
    run.to = Date.now();
    // What the agent's `done` will say (the checker compares the job's record with it).
    h.add({ kind: 'done', cluster: job.cluster, job: job.job_id, machine: inc.id, what: result.outcome, ...(result.reason ? { detail: result.reason } : {}), result: 'sent by the agent' });
    p.done();
    return result;
  }
}
