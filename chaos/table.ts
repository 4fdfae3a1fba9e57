import type { CampaignResult } from './campaign';

/** The run's summary as a Markdown table: rounds, clusters, faults by kind, reports checked, violations. */
export function summaryTable(r: CampaignResult): string {
  const rows: [string, string][] = [
    ['seed', String(r.seed)],
    ['rounds', String(r.rounds)],
    ['clusters', String(r.clusters)],
    ['nodes', String(r.nodes)],
    ...Object.entries(r.faults)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]): [string, string] => [`faults: ${k}`, String(n)]),
    ['reports checked', String(r.reportsChecked)],
    ['node job records checked', String(r.recordsChecked)],
    ['clusters checked gone after retention', String(r.retentionChecked)],
    ['clusters on machines (admitted / ended not_admitted)', `${r.machineClusters.total} (${r.machineClusters.admitted} / ${r.machineClusters.notAdmitted})`],
    ['admission snapshots checked', String(r.snapshotsChecked)],
    ...(r.failoverMs.length > 0 ? [['failovers (ms to +switch-master, median / max)', `${r.failoverMs.length} (${median(r.failoverMs)} / ${Math.max(...r.failoverMs)})`] as [string, string]] : []),
    ['violations', String(r.violations.length)],
    ['time', `${(r.ms / 1000).toFixed(0)} s`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return ['| what | count |', '| --- | ---: |', ...rows.map(([k, v]) => `| ${k.padEnd(w)} | ${v} |`)].join('\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? 0;
}
