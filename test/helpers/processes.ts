import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { connectionEnv, withoutRedisEnv } from '../../src/core/config';
import type { ConnectionConfig } from '../../src/core/config';

export const ROOT = path.resolve(__dirname, '../..');
/** The compiled command line; `npm test` builds it before jest runs. */
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
}

export function envFor(config: ConnectionConfig, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...withoutRedisEnv(process.env),
    ...connectionEnv(config),
    CS_LOG_LEVEL: process.env.CS_LOG_LEVEL ?? 'warn',
    ...extra,
  };
}

/**
 * How long a wait on a process's output may take before it counts as never
 * coming. A failure detector, not a timing assertion: on a 2-core machine
 * with a load average of 20, starting a worker took more than 15 s. Jest's
 * test timeout (jest.config.js) is the same, so a test that waits on several
 * things is stopped by jest first.
 */
export const WAIT_MS = 60_000;
/** How long `stop` waits after SIGTERM before SIGKILL; a graceful shutdown on a busy machine may take seconds. */
export const STOP_GRACE_MS = 20_000;

/** A `cluster-sync` child process whose output is collected; killed by PID in `stop`. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: NodeJS.ProcessEnv, options: { cwd?: string } = {}) {
    assertBuilt();
    this.child = spawn(process.execPath, [CLI, ...args], { env, cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * Waits until stdout or stderr matches, or fails naming what it saw.
   * `timeoutMs` (default {@link WAIT_MS}) only detects a process that will
   * never print it; it is no assertion on how fast it prints it.
   */
  async waitFor(pattern: RegExp, timeoutMs = WAIT_MS): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.stdout.match(pattern) ?? this.stderr.match(pattern);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}) before printing ${pattern}:\n${this.stdout}\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.stdout}\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.pid, signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited after {@link STOP_GRACE_MS}. */
  async stop(): Promise<number | null> {
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), STOP_GRACE_MS);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Starts `cluster-sync worker` as its own process and waits until it is ready. */
export async function startWorkerProcess(config: ConnectionConfig, extraArgs: string[] = []): Promise<CliProcess> {
  const p = new CliProcess(['worker', ...extraArgs], envFor(config, { CS_LOG_LEVEL: 'info' }));
  await p.waitFor(/workers ready/);
  return p;
}
