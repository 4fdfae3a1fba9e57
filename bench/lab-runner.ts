import type { ResolvedProgram } from '../src/agent/scripts';
import type { ProgramRunner, RunningProgram } from '../src/agent/runner';

/**
 * The lab bench's program runner: a test program "runs" for the job
 * variable `secs` (seconds, compressed time) without a process, so 40
 * machines fit in one bench process on a small host.
 */
export class SleepRunner implements ProgramRunner {
  start(program: ResolvedProgram, env: NodeJS.ProcessEnv): RunningProgram {
    let timer: NodeJS.Timeout | undefined;
    let finish: (e: { code: number | null; signal: NodeJS.Signals | null }) => void = () => undefined;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => (finish = resolve));
    timer = setTimeout(() => finish({ code: 0, signal: null }), Math.max(0, Number(env.secs ?? 0.1)) * 1000);
    return {
      program,
      pid: process.pid,
      started: Promise.resolve(),
      exited,
      stop: async () => {
        clearTimeout(timer);
        timer = undefined;
        finish({ code: null, signal: 'SIGTERM' });
      },
    };
  }
}
