import { formatDuration } from '../core/duration';
import type { MachineRecord } from './admission-store';
import type { WaitingCluster } from './explain';

/** What a machine does, in a few words. */
export function machineDoing(m: MachineRecord): string {
  if (m.state === 'running') return `${m.taken ? 'runs' : 'assigned'} ${m.job ?? '?'} of ${m.cluster ?? '?'}`;
  if (m.state === 'reserved') return `held for ${m.reserved_for ?? '?'}`;
  if (m.state === 'gone') return `left or lease lapsed${m.was === 'running' && m.job ? ` (last ran ${m.job})` : ''}`;
  return '';
}

/** The admission part of `status`: machines per testbox, then the clusters waiting and what each waits for. */
export function renderAdmission(machines: readonly MachineRecord[], waiting: readonly WaitingCluster[], now: number): string {
  const lines: string[] = [];
  lines.push(machines.length === 0 ? 'machines: none has asked for work (agents with --admission fifo are not listed)' : `machines (${machines.length}):`);
  for (const m of machines) {
    const since = formatDuration(Math.max(0, now - (m.state === 'gone' ? (m.gone_at ?? m.since) : m.since)));
    lines.push(`  ${m.testbox.padEnd(16)} ${m.id.padEnd(28)} ${m.state.padEnd(8)} for ${since.padEnd(8)} last contact ${formatDuration(Math.max(0, now - m.seen))} ago  ${machineDoing(m)}`.trimEnd());
  }
  lines.push(waiting.length === 0 ? 'waiting for admission: none' : `waiting for admission (${waiting.length}), oldest first:`);
  for (const w of waiting) {
    lines.push(
      `  ${w.cluster} waiting ${formatDuration(w.waitingMs)} (not admitted in ${formatDuration(Math.max(0, w.admitDeadline - now))}: ends not_admitted)${w.reserved.length > 0 ? `, holds ${w.reserved.join(', ')}` : ''}`,
    );
    for (const line of w.waitsFor) lines.push(`    ${line}`);
  }
  return lines.join('\n');
}
