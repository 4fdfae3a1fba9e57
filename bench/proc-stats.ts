import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU and memory of one process, from /proc (Linux). */
export interface ProcSample {
  pid: number;
  /** User + system CPU time so far, seconds. */
  cpuSeconds: number;
  /** Resident set size now, MB. */
  rssMb: number;
  /** Peak resident set size, MB. */
  peakRssMb: number;
}

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    ticks = Number(out.stdout.trim()) || 100;
  }
  return ticks;
}

/** Reads /proc/<pid>/stat and /proc/<pid>/status; undefined when the process is gone or /proc is missing. */
export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { pid, cpuSeconds: (utime + stime) / clockTicks(), rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** True while a process with this PID exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
