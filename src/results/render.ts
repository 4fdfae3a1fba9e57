import { formatDuration } from '../core/duration';
import type { ClusterRow } from './list';
import type { ClusterResult, StepResult } from './result';

function step(s: StepResult): string {
  const took = s.took_ms === undefined ? '' : ` ${formatDuration(s.took_ms)}`;
  return `  ${s.name.padEnd(28)} ${s.result.padEnd(8)}${took}${s.result === 'pass' || !s.detail ? '' : `  ${s.detail}`}`;
}

/** A result as lines for a terminal (`cluster-sync result CLUSTER`). */
export function renderResult(r: ClusterResult): string {
  const lines = [
    `cluster ${r.cluster}  ${r.state === 'ended' ? `verdict ${r.verdict}` : r.state}${r.end_cause ? `  (${r.end_cause}${r.end_kind && r.end_kind !== 'none' ? `, ${r.end_kind}` : ''})` : ''}  spec ${r.spec}  attempt ${r.attempt} of ${r.attempts.length}`,
  ];
  if (r.abort_reason) lines.push(`  reason: ${r.abort_reason}`);
  if (r.rerun_of) lines.push(`  re-run of ${r.rerun_of}`);
  if (r.reruns.length > 0) lines.push(`  re-run as ${r.reruns.join(', ')}`);
  if (r.attempts.length > 1) {
    lines.push('attempts:');
    for (const a of r.attempts) lines.push(`  ${String(a.attempt).padEnd(3)} ${a.cluster.padEnd(10)} ${(a.verdict ?? a.state).padEnd(12)} ${a.end_cause ?? ''}${a.reason ? `  ${a.reason}` : ''}`);
  }
  lines.push(`nodes (of ${r.attempt_cluster}):`);
  for (const n of r.nodes) {
    lines.push(`  ${n.job.padEnd(10)} ${n.roles.padEnd(14)} ${(n.host || '-').padEnd(18)} ${n.ended.padEnd(12)}${n.essential ? '' : ' (not essential)'}${n.reason ? `  ${n.reason}` : ''}`);
    for (const p of n.programs) {
      const exit = p.exit !== null ? `exit ${p.exit}` : p.signal ? p.signal : '-';
      lines.push(`      ${p.kind} ${p.name.padEnd(20)} ${p.result.padEnd(10)} ${exit.padEnd(8)} ${formatDuration(p.ms)}`);
    }
  }
  lines.push('barriers:', ...r.barriers.map(step));
  if (r.syncs.length > 0) lines.push('syncs:', ...r.syncs.map(step));
  return lines.join('\n');
}

/** `cluster-sync list` as a table. */
export function renderList(rows: readonly ClusterRow[]): string {
  if (rows.length === 0) return 'no clusters';
  const head = `${'CLUSTER'.padEnd(10)} ${'STATE'.padEnd(9)} ${'VERDICT'.padEnd(13)} ${'CAUSE'.padEnd(13)} ${'ATTEMPT'.padEnd(8)} ${'NODES'.padEnd(6)} ${'CREATED'.padEnd(24)} SPEC`;
  return [
    head,
    ...rows.map(
      (r) =>
        `${r.cluster.padEnd(10)} ${r.state.padEnd(9)} ${(r.verdict ?? '-').padEnd(13)} ${(r.end_cause ?? '-').padEnd(13)} ${`${r.attempt}/${r.attempts}`.padEnd(8)} ${String(r.nodes).padEnd(6)} ${new Date(r.created).toISOString().padEnd(24)} ${r.spec}${r.rerun_of ? ` (re-run of ${r.rerun_of})` : ''}`,
    ),
  ].join('\n');
}
