import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ResolvedProgram } from './scripts';

export interface ProgramExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A program the runner started, in its own process group. */
export interface RunningProgram {
  readonly program: ResolvedProgram;
  readonly pid: number;
  /** Resolves once the process started; rejects when it could not (not found, not executable, bad interpreter). */
  readonly started: Promise<void>;
  /** Resolves when the program's process exits. */
  readonly exited: Promise<ProgramExit>;
  /** Stops the program's whole process group: SIGTERM, then SIGKILL after `graceMs` (default 3000 ms). */
  stop(graceMs?: number): Promise<void>;
}

/** One line a program printed. */
export type LineListener = (program: ResolvedProgram, stream: 'stdout' | 'stderr', line: string) => void;

/** What the life needs to run programs; swapped in tests that count calls. */
export interface ProgramRunner {
  start(program: ResolvedProgram, env: NodeJS.ProcessEnv, cwd: string, onLine: LineListener): RunningProgram;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* the group is gone already */
  }
}

/**
 * Runs programs as lkp-tests does, minus the shell: the script is executed
 * directly (its `#!` line picks the interpreter) with an argument list and
 * the given environment, as the leader of a new process group, so stopping
 * it stops everything it started. Its stdin is a pipe that closes when the
 * agent exits, so a daemon can notice that its agent died.
 */
export class ProcessRunner implements ProgramRunner {
  start(program: ResolvedProgram, env: NodeJS.ProcessEnv, cwd: string, onLine: LineListener): RunningProgram {
    const child = spawn(program.path, [], { cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    child.stdin?.on('error', () => undefined);
    for (const stream of ['stdout', 'stderr'] as const) {
      const s = child[stream];
      if (s) createInterface({ input: s }).on('line', (line) => onLine(program, stream, line));
    }
    const started = new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => reject(new Error(`${program.kind === 'daemon' ? 'daemon' : 'tests'}/${program.name} could not start: ${err.message}`)));
    });
    const exited = new Promise<ProgramExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    started.catch(() => undefined);
    let done = false;
    void exited.then(() => (done = true));
    return {
      program,
      get pid() {
        return child.pid ?? -1;
      },
      started,
      exited,
      async stop(graceMs = 3000) {
        const pid = child.pid;
        if (pid === undefined) return;
        killGroup(pid, 'SIGTERM');
        if (!done) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
          clearTimeout(timer);
        }
        // Whatever of the group is left (children that ignored SIGTERM) goes now.
        killGroup(pid, 'SIGKILL');
        await exited;
      },
    };
  }
}

/** "exited with code 3" / "was killed by SIGKILL". */
export function describeExit(e: ProgramExit): string {
  if (e.code !== null) return `exited with code ${e.code}`;
  if (e.signal !== null) return `was killed by ${e.signal}`;
  return 'could not run';
}
