import type { BarrierAnswer, NodeClient } from '../client/node-client';
import { formatDuration } from '../core/duration';
import { errorMessage } from '../core/errors';
import type { NodeJob } from '../split/node-job';
import { programEnv, rolesIpEnv } from './env';
import { appendEtcHosts, bindDirectIps, execCommand, primaryIp } from './network';
import { Outcome, abortOutcome } from './outcome';
import type { LifeResult } from './outcome';
import { describeExit } from './runner';
import type { ProgramExit, RunningProgram } from './runner';
import type { LifeOptions } from './life-options';
import { resolvePrograms } from './scripts';
import { LifeSync } from './life-sync';
import type { StepExtra } from './life-sync';
import type { ResolvedProgram, ResolvedPrograms } from './scripts';
import { ProgramRuns } from './program-runs';

/*
 * A node's life (DESIGN §3), in order:
 *   write_state -> wait_start (start) -> roles_ip -> bind direct ips ->
 *   start daemons -> wait_ready (ready) -> run tests ->
 *   finished | failed | wait_finish (finish) -> stop daemons.
 * The node waits at each barrier once, whatever it runs. `abort` at any
 * point (from the workers, or this agent being stopped, or one of its
 * daemons dying) stops its programs and ends the life. A standalone node
 * (cs-localhost) runs the same steps without waiting at any barrier.
 */

export type { LifeOptions } from './life-options';

type Interrupt = { kind: 'own-failure' | 'local-abort'; reason: string };

class NodeLife {
  private readonly daemons: RunningProgram[] = [];
  private test: RunningProgram | undefined;
  private ownFailure: string | undefined;
  private localAbort: string | undefined;
  private resolveInterrupt!: (i: Interrupt) => void;
  private readonly interrupted = new Promise<Interrupt>((r) => (this.resolveInterrupt = r));
  private ending = false;
  private reporting: Promise<void> = Promise.resolve();
  private readonly role: string;
  /** The lava-* commands' socket and scripts, started once programs may run. */
  private readonly sync: LifeSync;
  /** Every program started, with its exit and duration (the cluster's result). */
  readonly runs = new ProgramRuns();

  constructor(
    private readonly job: NodeJob,
    private readonly client: NodeClient,
    private readonly opts: LifeOptions,
  ) {
    this.role = job.node_roles;
    this.sync = new LifeSync(job, client, (step, result, extra) => this.step(step, result, extra));
  }

  private step(step: string, result: string, extra: StepExtra = {}): void {
    this.opts.output.step({ at: Date.now(), cluster: this.job.cluster, job: this.job.job_id, role: this.role, step, result, ...extra });
  }

  async run(): Promise<LifeResult> {
    let programs: ResolvedPrograms;
    try {
      programs = resolvePrograms(this.opts.scriptsRoot, this.job.programs);
    } catch (err) {
      return this.setupFailed('programs', err);
    }
    const names = (ps: ResolvedProgram[]) => ps.map((p) => p.name).join(', ') || 'none';
    const vars = programs.variables.length > 0 ? `; taken as variables: ${programs.variables.map((p) => p.name).join(', ')}` : '';
    this.step('programs', 'ok', { detail: `daemons: ${names(programs.daemons)}; tests: ${names(programs.tests)}${vars}` });

    const onSignal = (): void => this.interrupt('local-abort', `agent stopped: ${errorMessage(this.opts.signal?.reason ?? 'aborted')}`);
    if (this.opts.signal?.aborted) onSignal();
    this.opts.signal?.addEventListener('abort', onSignal, { once: true });
    await this.client.start();
    this.client.onAbort(() => void this.stopTest());
    const stopHeartbeat = this.client.startHeartbeat(this.job.heartbeat_interval_ms);
    try {
      return await this.live(programs);
    } catch (err) {
      return await this.setupFailed('error', err);
    } finally {
      this.ending = true;
      stopHeartbeat();
      this.opts.signal?.removeEventListener('abort', onSignal);
      await this.stopDaemons();
      await this.sync.close((text) => this.opts.output.notice(text));
      // The failed / abort report goes out before the life ends, so the other nodes hear it;
      // with no worker reachable the agent still ends (dead-node detection then tells the others).
      await this.settleReport();
    }
  }

  /** Ends the life early: this node failed (a daemon died) or the agent was stopped. */
  private interrupt(kind: Interrupt['kind'], reason: string): void {
    if (this.ending || this.ownFailure !== undefined || this.localAbort !== undefined) return;
    if (kind === 'own-failure') this.ownFailure = reason;
    else this.localAbort = reason;
    this.step(kind === 'own-failure' ? 'failed' : 'abort', 'reporting', { detail: reason });
    this.reporting = this.client
      .report(kind === 'own-failure' ? 'failed' : 'abort', { reason })
      .catch((err: unknown) => this.opts.output.notice(`could not report ${kind === 'own-failure' ? 'failed' : 'abort'}: ${errorMessage(err)}`));
    this.resolveInterrupt({ kind, reason });
    void this.stopTest();
  }

  private async settleReport(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.opts.reportGraceMs ?? 15_000)));
    if (await Promise.race([this.reporting.then(() => false), gaveUp])) this.opts.output.notice('ending without an answer to the last report: no worker answered in time');
    clearTimeout(timer);
  }

  /** The result once an abort answer or an interrupt ended the life. */
  private ended(answer?: BarrierAnswer): LifeResult {
    if (this.ownFailure !== undefined) return { outcome: Outcome.TestFailed, reason: this.ownFailure };
    if (this.localAbort !== undefined) return { outcome: Outcome.Aborted, reason: this.localAbort };
    const reason = answer?.reason ?? this.client.aborted?.reason ?? 'cluster aborted';
    return { outcome: abortOutcome(reason), reason };
  }

  private async barrier(kind: 'wait_start' | 'wait_ready' | 'wait_finish' | 'finished'): Promise<BarrierAnswer | undefined> {
    const t0 = Date.now();
    const answer = await Promise.race([this.client.wait(kind), this.interrupted.then(() => undefined)]);
    if (!answer) return undefined;
    this.step(kind, answer.result, { waited_ms: Date.now() - t0, took_ms: answer.took_ms, detail: answer.result === 'abort' ? answer.reason : undefined });
    return answer;
  }

  private async live(programs: ResolvedPrograms): Promise<LifeResult> {
    const standalone = this.job.standalone;
    const ip = this.opts.ip ?? (await primaryIp(this.opts.exec ?? execCommand));
    await this.client.report('write_state', {
      info: { node_roles: this.job.node_roles, ip, direct_macs: this.job.direct_macs, direct_ips: this.job.direct_ips },
    });
    this.step('write_state', 'ok', { detail: `ip=${ip}${this.job.direct_ips ? ` direct_ips=${this.job.direct_ips}` : ''}` });

    if (!standalone) {
      const a = await this.barrier('wait_start');
      if (a?.result !== 'start') return this.ended(a);
    }

    const rolesIp = rolesIpEnv(await this.client.rolesIp());
    this.step('roles_ip', 'ok', {
      detail: Object.entries(rolesIp)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
    });
    if (this.opts.etcHosts) {
      const lines = await appendEtcHosts(rolesIp, this.opts.etcHosts);
      this.step('etc_hosts', 'ok', { detail: `${lines.length} line(s) added to ${this.opts.etcHosts}` });
    }
    if (this.job.direct_macs.trim() !== '') {
      const bound = await bindDirectIps(this.job.direct_macs, this.job.direct_ips, this.opts.exec ?? execCommand);
      this.step('direct_ips', 'ok', { detail: bound.join(', ') });
    }
    const node = { cluster: this.job.cluster, job_id: this.job.job_id, node_roles: this.job.node_roles, node_ip: ip, direct_ips: this.job.direct_ips, direct_macs: this.job.direct_macs };
    const base = this.opts.baseEnv ?? process.env;
    const syncEnv = await this.sync.start(base);
    const envFor = (p: ResolvedProgram): NodeJS.ProcessEnv => ({
      ...programEnv({ base, params: this.job.params, vars: { ...this.job.vars, ...Object.fromEntries(programs.variables.map((v) => [v.name, null])) }, programParams: p.params, rolesIp, node }),
      ...syncEnv,
    });

    for (const d of programs.daemons) {
      const started = await this.startDaemon(d, envFor(d));
      if (!started) return this.ended();
    }

    if (!standalone) {
      const a = await this.barrier('wait_ready');
      if (a?.result !== 'ready') return this.ended(a);
    }

    for (const t of programs.tests) {
      const ok = await this.runTest(t, envFor(t));
      if (!ok) return this.ended(this.client.aborted);
    }

    const kind = programs.tests.length > 0 ? 'finished' : 'wait_finish';
    if (standalone) {
      await this.client.report(kind);
      this.step(kind, 'ok');
    } else {
      const a = await this.barrier(kind);
      if (a?.result !== 'finish') return this.ended(a);
    }
    if (this.ownFailure !== undefined || this.localAbort !== undefined) return this.ended();
    return { outcome: Outcome.Passed, reason: '' };
  }

  private async startDaemon(d: ResolvedProgram, env: NodeJS.ProcessEnv): Promise<boolean> {
    const running = this.opts.runner.start(d, env, this.opts.scriptsRoot, (p, stream, line) => this.opts.output.output(this.job.job_id, p.name, stream, line));
    const record = this.runs.begin(d.name, 'daemon');
    try {
      await running.started;
    } catch (err) {
      record(undefined, 'not_started');
      this.interrupt('own-failure', errorMessage(err));
      return false;
    }
    void running.exited.then((e) => record(e, this.ending ? 'stopped' : e.code === 0 ? 'exited' : 'failed'));
    this.daemons.push(running);
    this.step(`daemon ${d.name}`, 'started', { detail: `pid ${running.pid}` });
    void running.exited.then((e) => this.daemonExited(d, e));
    return true;
  }

  private daemonExited(d: ResolvedProgram, e: ProgramExit): void {
    if (this.ending) return;
    // A daemon may leave its work to a child and exit 0 (a forking daemon); exiting otherwise is a failure.
    if (e.code === 0) {
      this.step(`daemon ${d.name}`, 'exited', { detail: 'with code 0' });
      return;
    }
    if (this.client.aborted) return;
    this.interrupt('own-failure', `daemon ${d.name} ${describeExit(e)}`);
  }

  /** Runs one test; true when it exited 0 and nothing ended the life meanwhile. */
  private async runTest(t: ResolvedProgram, env: NodeJS.ProcessEnv): Promise<boolean> {
    if (this.client.aborted || this.ownFailure !== undefined || this.localAbort !== undefined) return false;
    const t0 = Date.now();
    const running = this.opts.runner.start(t, env, this.opts.scriptsRoot, (p, stream, line) => this.opts.output.output(this.job.job_id, p.name, stream, line));
    this.test = running;
    const record = this.runs.begin(t.name, 'test');
    try {
      await running.started;
    } catch (err) {
      record(undefined, 'not_started');
      this.test = undefined;
      this.interrupt('own-failure', errorMessage(err));
      return false;
    }
    this.step(`test ${t.name}`, 'running', { detail: `pid ${running.pid}` });
    const e = await running.exited;
    this.test = undefined;
    const stopped = this.client.aborted !== undefined || this.localAbort !== undefined || this.ownFailure !== undefined;
    record(e, stopped ? 'stopped' : e.code === 0 ? 'passed' : 'failed');
    if (stopped) {
      this.step(`test ${t.name}`, 'stopped', { detail: `${describeExit(e)} after ${formatDuration(Date.now() - t0)} (cluster aborted)` });
      return false;
    }
    if (e.code === 0) {
      this.step(`test ${t.name}`, 'passed', { detail: `after ${formatDuration(Date.now() - t0)}` });
      return true;
    }
    this.step(`test ${t.name}`, 'failed', { detail: `${describeExit(e)} after ${formatDuration(Date.now() - t0)}` });
    this.interrupt('own-failure', `test ${t.name} ${describeExit(e)}`);
    return false;
  }

  private async stopTest(): Promise<void> {
    await this.test?.stop(this.opts.stopGraceMs);
  }

  private async stopDaemons(): Promise<void> {
    if (this.daemons.length === 0) return;
    const all = this.daemons.splice(0);
    await Promise.all(all.map((d) => d.stop(this.opts.stopGraceMs)));
    this.step('stop daemons', 'ok', { detail: all.map((d) => `${d.program.name} (pid ${d.pid})`).join(', ') });
  }

  /** Setup went wrong: say so, tell the cluster (`failed`), end with setup_error. */
  private async setupFailed(step: string, err: unknown): Promise<LifeResult> {
    const reason = `${step === 'error' ? '' : `${step}: `}${errorMessage(err)}`;
    if (this.ownFailure !== undefined || this.localAbort !== undefined || this.client.aborted) return this.ended(this.client.aborted);
    this.step(step, 'setup_error', { detail: errorMessage(err) });
    try {
      await this.client.report('failed', { reason: `setup error: ${reason}` });
    } catch (e) {
      this.opts.output.notice(`could not report failed: ${errorMessage(e)}`);
    }
    return { outcome: Outcome.SetupError, reason };
  }
}

/** Runs one node job's life to its end; never throws for what a node may meet. */
export async function runLife(job: NodeJob, client: NodeClient, opts: LifeOptions): Promise<LifeResult> {
  const life = new NodeLife(job, client, opts);
  const result = await life.run();
  return { ...result, programs: life.runs.list() };
}
