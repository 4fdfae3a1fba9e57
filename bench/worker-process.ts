import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { connectionEnv, withoutRedisEnv } from '../src/core/config';
import type { ConnectionConfig } from '../src/core/config';

/** The compiled command line, next to this file once built (dist/bench -> dist/src/cli). */
/**
 * The `cluster-sync` CLI the workers run from: this build's, or another build's given by
 * `CS_BENCH_WORKER_CLI` (its `dist/src/cli/main.js`), to measure two versions side by side with
 * the same bench and servers.
 */
export const CLI = process.env.CS_BENCH_WORKER_CLI ? path.resolve(process.env.CS_BENCH_WORKER_CLI) : path.resolve(__dirname, '../src/cli/main.js');

/** The environment a `cluster-sync` process of the bench runs with: this process's, plus the connection settings. */
export function cliEnv(config: ConnectionConfig, logLevel: string): NodeJS.ProcessEnv {
  return { ...withoutRedisEnv(process.env), ...connectionEnv(config), CS_LOG_LEVEL: logLevel };
}

export interface WorkerProcessOptions {
  /** Extra arguments for node itself, e.g. `--cpu-prof`. Default none. */
  nodeArgs?: string[];
  /** Folder the process runs in (where `--cpu-prof` writes). Default the current one. */
  cwd?: string;
  /** Arguments after `worker`, e.g. `--concurrency 16`. Default none. */
  args?: string[];
  /** How long to wait for "workers ready", ms. Default 20 000. */
  readyTimeoutMs?: number;
}

/**
 * One `cluster-sync worker` process, as an operator runs it. Output is kept
 * (the last 8 KiB) for error messages; stopped by its PID.
 */
export class WorkerProcess {
  readonly child: ChildProcess;
  private output = '';
  readonly exited: Promise<number | null>;

  private constructor(config: ConnectionConfig, options: WorkerProcessOptions) {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm run bench does)`);
    const env = cliEnv(config, 'info');
    this.child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'worker', ...(options.args ?? [])], { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-8192);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  }

  static async start(config: ConnectionConfig, options: WorkerProcessOptions = {}): Promise<WorkerProcess> {
    const p = new WorkerProcess(config, options);
    const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
    while (!p.output.includes('workers ready')) {
      if (p.child.exitCode !== null) throw new Error(`worker process exited (${p.child.exitCode}) before it was ready:\n${p.output}`);
      if (Date.now() > deadline) {
        await p.stop();
        throw new Error(`worker process not ready within ${options.readyTimeoutMs ?? 60_000} ms:\n${p.output}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return p;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get lastOutput(): string {
    return this.output;
  }

  /** SIGTERM (the worker closes cleanly, writing a CPU profile if asked), SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}
