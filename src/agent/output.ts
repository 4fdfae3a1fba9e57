import { colors } from '../core/terminal';
import { formatDuration } from '../core/duration';

/** One step of a node's life, as printed. */
export interface StepEvent {
  /** Local time, ms. */
  at: number;
  cluster: string;
  job: string;
  role: string;
  step: string;
  /** `ok`, a barrier's answer (`start`, `ready`, `finish`, `abort`), `failed`, `passed`, ... */
  result: string;
  detail?: string;
  /** How long this node waited at the step, ms. */
  waited_ms?: number;
  /** How long the barrier took to resolve, from the previous one (server clock), ms. */
  took_ms?: number;
}

export interface OutputLine {
  type: 'step' | 'output' | 'notice';
  [key: string]: unknown;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

function colourResult(r: string): string {
  if (r === 'abort' || r === 'failed' || r.startsWith('error') || r === 'test_failed' || r === 'setup_error' || r === 'aborted' || r === 'timed_out') return colors().red(r);
  if (r === 'passed' || r === 'finish' || r === 'ok' || r === 'start' || r === 'ready' || r === 'finished') return colors().green(r);
  return r;
}

/**
 * The agent's progress: one human line per step (time, cluster, role, step,
 * result), or with `json` one JSON object per line for machines. Programs'
 * output is passed on prefixed with the program's name.
 */
export class Output {
  constructor(
    private readonly write: (line: string) => void,
    private readonly json: boolean,
  ) {}

  step(e: StepEvent): void {
    if (this.json) {
      this.write(JSON.stringify({ type: 'step', ...e }));
      return;
    }
    const timing: string[] = [];
    if (e.waited_ms !== undefined) timing.push(`waited ${formatDuration(e.waited_ms)}`);
    if (e.took_ms !== undefined) timing.push(`barrier took ${formatDuration(e.took_ms)}`);
    const extra = [e.detail, timing.length > 0 ? `(${timing.join(', ')})` : undefined].filter(Boolean).join(' ');
    this.write(`${colors().dim(clock(e.at))} ${e.cluster} ${e.job} ${colors().bold(e.role)} ${e.step.padEnd(12)} ${colourResult(e.result)}${extra ? ` ${extra}` : ''}`);
  }

  output(job: string, program: string, stream: 'stdout' | 'stderr', line: string): void {
    if (this.json) this.write(JSON.stringify({ type: 'output', at: Date.now(), job, program, stream, line }));
    else this.write(`${colors().dim(clock(Date.now()))} ${job} ${colors().cyan(`[${program}]`)} ${line}`);
  }

  notice(text: string): void {
    if (this.json) this.write(JSON.stringify({ type: 'notice', at: Date.now(), text }));
    else this.write(`${colors().dim(clock(Date.now()))} ${colors().yellow(text)}`);
  }
}
