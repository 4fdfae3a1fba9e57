import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { connectionEnv, withoutRedisEnv } from '../src/core/config';
import type { ConnectionConfig } from '../src/core/config';
import { startHaSet, watchSwitchMaster } from '../src/services/ha-servers';
import type { HaSet } from '../src/services/ha-servers';
import { freePort, startNats, startRedis } from '../src/services/local-servers';
import type { LocalServer } from '../src/services/local-servers';

/**
 * The system under test, all real and all on loopback: Redis (append-only
 * file, fsync on every write), NATS, two or three worker processes and the
 * scheduler, each a child process of the built CLI, stopped by PID. Every
 * exit that the campaign did not cause is recorded as a death.
 */
/** The repository: this file runs from chaos/ (jest) or dist/chaos/ (npm run chaos). */
const ROOT = path.basename(path.dirname(__dirname)) === 'dist' ? path.resolve(__dirname, '../..') : path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
export const API_TOKEN = 'chaos-api-token-0123456789';

export class Proc {
  readonly child: ChildProcess;
  private tail = '';
  /** Set before the campaign kills or stops it on purpose. */
  expectedExit = false;
  readonly exited: Promise<void>;

  /** `logDir`: where its whole output also goes, as `<name>-<pid>.log` (the tail is kept in any case). */
  constructor(
    readonly name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    onDeath: (p: Proc, how: string) => void,
    logDir?: string,
  ) {
    this.child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const file = logDir ? createWriteStream(path.join(logDir, `${name.replace(/\W+/g, '-')}-${this.child.pid ?? 'x'}.log`)) : undefined;
    const keep = (d: Buffer): void => {
      this.tail = (this.tail + d.toString()).slice(-8000);
      file?.write(d);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        if (!this.expectedExit) onDeath(this, `exited with ${signal ?? `code ${code}`}; last output:\n${this.tail.split('\n').slice(-8).join('\n')}`);
        file?.end();
        resolve();
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get output(): string {
    return this.tail;
  }

  /**
   * Waits until the process printed `pattern`. The timeout only detects a process that never will: on
   * a 2-core machine under load (load average 38) a worker took over 30 s to say it was ready; 60 s, as
   * test/helpers/processes.ts WAIT_MS.
   */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.tail)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`${this.name} exited before printing ${pattern}:\n${this.tail}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${this.tail}`);
      await sleep(20);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.pid, sig);
  }

  async stop(): Promise<void> {
    this.expectedExit = true;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for `p`, at most `ms` (its timer cleared either way, so it keeps no process alive). */
export async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export class ChaosEnv {
  redis!: LocalServer;
  nats!: LocalServer;
  config!: ConnectionConfig;
  workers: Proc[] = [];
  scheduler!: Proc;
  schedulerUrl = '';
  /** Deaths nobody caused: "name (pid): how". */
  readonly deaths: string[] = [];
  private schedulerPort = 0;
  /** With `--ha`: the NATS cluster and the Redis primary, replicas and sentinels. */
  ha: HaSet | undefined;

  /**
   * `retentionMs`: the workers' `--retention` (an ended cluster is deleted after it);
   * `endGraceMs`: their `--end-grace` (a node job whose node never said done is failed after it);
   * `submitGraceMs`: their `--submit-grace` (a half-written cluster is finished or removed after it).
   */
  constructor(
    readonly workerCount: number,
    readonly retentionMs: number,
    readonly endGraceMs: number,
    readonly submitGraceMs = 2000,
    readonly withHa = false,
    /** Where each worker's and scheduler's whole output goes (one file per process); none by default. */
    readonly logDir?: string,
  ) {
    if (logDir) mkdirSync(logDir, { recursive: true });
  }

  private env(level = 'info'): NodeJS.ProcessEnv {
    return { ...withoutRedisEnv(process.env), ...connectionEnv(this.config), CS_LOG_LEVEL: level };
  }

  private readonly onDeath = (p: Proc, how: string): void => {
    this.deaths.push(`${p.name} (pid ${p.pid}) ${how}`);
  };

  async start(): Promise<void> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm run chaos does)`);
    if (this.withHa) {
      this.ha = await startHaSet({ downAfterMs: 1000, failoverTimeoutMs: 5000 });
      [this.redis, this.nats] = [this.ha.redis[0]!, this.ha.nats[0]!];
      this.config = { ...this.ha.connection(), subjectPrefix: 'cs', keyPrefix: '' };
    } else {
      [this.redis, this.nats] = await Promise.all([startRedis({ appendfsync: 'always' }), startNats()]);
      this.config = { redisUrl: this.redis.url, natsUrl: this.nats.url, subjectPrefix: 'cs', keyPrefix: '' };
    }
    for (let i = 0; i < this.workerCount; i++) this.workers.push(await this.startWorker(i));
    this.schedulerPort = await freePort();
    await this.startScheduler();
  }

  /** 1 s locks: a killed worker's reports go to another within about 2 s. */
  async startWorker(i: number): Promise<Proc> {
    const args = ['worker', '--lock-ms', '1000', '--reserve-after', '1s', '--retention', `${this.retentionMs}ms`, '--end-grace', `${this.endGraceMs}ms`, '--submit-grace', `${this.submitGraceMs}ms`];
    const p = new Proc(`worker ${i}`, args, this.env(), this.onDeath, this.logDir);
    // One that never said so is stopped here: nothing else knows it, and its pipes kept jest alive for ever.
    await p.waitFor(/workers ready/).catch(async (err: unknown) => {
      await p.stop();
      throw err;
    });
    return p;
  }

  async startScheduler(): Promise<void> {
    this.scheduler = new Proc('scheduler', ['scheduler', '--port', String(this.schedulerPort), '--long-poll', '3', '--token', API_TOKEN], this.env('warn'), this.onDeath, this.logDir);
    await this.scheduler.waitFor(/listening on/);
    this.schedulerUrl = `http://127.0.0.1:${this.schedulerPort}`;
  }

  async killWorker(i: number): Promise<void> {
    const w = this.workers[i % this.workers.length] as Proc;
    w.expectedExit = true;
    w.signal('SIGKILL');
    await w.exited;
    this.workers[i % this.workers.length] = await this.startWorker(i % this.workers.length);
  }

  async pauseWorker(i: number, ms: number): Promise<void> {
    const w = this.workers[i % this.workers.length] as Proc;
    w.signal('SIGSTOP');
    await sleep(ms);
    w.signal('SIGCONT');
  }

  async restartNats(): Promise<void> {
    process.kill(this.nats.pid, 'SIGKILL');
    await this.nats.restart();
  }

  /** SIGKILL (no chance to flush), then start again on the same port and folder: it loads its AOF. */
  async restartRedis(): Promise<void> {
    process.kill(this.redis.pid, 'SIGKILL');
    await this.redis.restart();
  }

  /** An out-of-memory window: `maxmemory` 1 byte with `noeviction`, so Redis refuses every write for `ms`, then no limit again. */
  async redisOutOfMemory(ms: number): Promise<void> {
    const admin = new Redis(this.config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    admin.on('error', () => undefined);
    try {
      await admin.connect();
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      await sleep(ms);
    } finally {
      await admin.config('SET', 'maxmemory', '0').catch(() => undefined);
      admin.disconnect();
    }
  }

  /**
   * `--ha`: the primary SIGKILLed (`SIGSTOP`ped with `freeze`) until a
   * sentinel announces `+switch-master` (and at least `ms`), then started
   * again (`SIGCONT`); resolves once it follows the new primary and the set
   * is whole again. Returns how long the failover took, ms.
   */
  async failPrimary(freeze: boolean, ms: number): Promise<number> {
    const ha = this.requireHa();
    const old = await ha.primary();
    const watch = await watchSwitchMaster(ha.sentinels[0]!.port, ha.masterName);
    const t0 = Date.now();
    let switchedMs = -1;
    try {
      process.kill(old.pid, freeze ? 'SIGSTOP' : 'SIGKILL');
      const limit = new Promise<void>((resolve) => setTimeout(resolve, 60_000).unref());
      await Promise.race([watch.next.then(() => (switchedMs = Date.now() - t0)), limit]);
      await sleep(Math.max(0, ms - (Date.now() - t0)));
    } finally {
      watch.close();
      if (freeze) process.kill(old.pid, 'SIGCONT');
      else await old.restart();
    }
    if (switchedMs < 0) throw new Error(`no +switch-master within 60 s after ${freeze ? 'freezing' : 'killing'} the primary 127.0.0.1:${old.port}`);
    await ha.ready(180_000);
    return switchedMs;
  }

  /** `--ha`: one NATS server of the three SIGKILLed, started again after `ms`. */
  async killNatsServer(i: number, ms: number): Promise<void> {
    const server = this.requireHa().nats[i % 3]!;
    process.kill(server.pid, 'SIGKILL');
    await sleep(ms);
    await server.restart();
  }

  private requireHa(): HaSet {
    if (!this.ha) throw new Error('this fault needs --ha');
    return this.ha;
  }

  async killScheduler(): Promise<void> {
    this.scheduler.expectedExit = true;
    this.scheduler.signal('SIGKILL');
    await this.scheduler.exited;
    await this.startScheduler();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.workers, this.scheduler].filter(Boolean).map((p) => p.stop()));
    if (this.ha) await this.ha.stop();
    else await Promise.all([this.redis?.dispose(), this.nats?.dispose()]);
  }
}
