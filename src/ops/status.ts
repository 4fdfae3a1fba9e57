import pc from 'picocolors';
import type { ClusterView } from '../cluster/view';
import type { MessageView } from '../cluster/messages-view';
import { formatDuration } from '../core/duration';
import type { ClusterEvent } from '../fold/outcome';
import type { ClusterSummary } from './cluster-summary';
import { formatEvent } from './event-line';

/** Lays out rows as columns separated by two spaces. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function relative(ms: number | undefined, now: number): string {
  if (ms === undefined) return '-';
  return ms >= now ? `in ${formatDuration(ms - now)}` : `${formatDuration(now - ms)} ago`;
}

/** `cluster-sync status`: one row per open cluster. */
export function renderOpenClusters(rows: ClusterSummary[], now = Date.now()): string {
  if (rows.length === 0) return 'no open clusters';
  return table(
    ['CLUSTER', 'ROLES', 'PENDING', 'WAITING', 'AGE', 'DEADLINE'],
    rows.map((r) => [r.id, r.roles, r.pending ?? r.final ?? '-', `${r.waiting}/${r.nodes}`, formatDuration(Math.max(0, now - r.created)), relative(r.deadline, now)]),
  );
}

/** `cluster-sync status ID`: the cluster, its barriers, every node, and its event history. */
export function renderCluster(view: ClusterView, events: ClusterEvent[], color = false, now = Date.now(), messages: MessageView[] = []): string {
  const c = pc.createColors(color);
  const state = view.final ? (view.final === 'abort' ? c.red('aborted') : c.green('finished')) : `waiting at ${view.pending ?? '?'}`;
  const out: string[] = [
    `cluster ${c.bold(view.id)}  spec ${view.spec}  ${state}  created ${new Date(view.created).toISOString()} (${formatDuration(Math.max(0, now - view.created))} ago)`,
    '',
    table(
      ['BARRIER', 'RESULT', 'AT', 'DEADLINE', 'REASON'],
      view.barriers.map((b) => [
        b.barrier,
        b.result ?? (view.pending === b.barrier ? 'pending' : '-'),
        b.at === undefined ? '-' : new Date(b.at).toISOString(),
        b.result === undefined ? relative(b.deadline, now) : '-',
        b.reason ?? '',
      ]),
    ),
    '',
    table(
      ['NODE', 'ROLES', 'STATE', 'IP', 'DIRECT_IPS', 'DIRECT_MACS'],
      view.nodes.map((n) => [n.job, n.roles, n.state || 'submitted', n.ip || '-', n.direct_ips || '-', n.direct_macs || '-']),
    ),
    ...(messages.length > 0 ? ['', renderMessages(messages, now)] : []),
    '',
    `events (${events.length}):`,
    ...events.map((e) => `  ${formatEvent(e, color)}`),
  ];
  return out.join('\n');
}

/** Named messages (lava-send / lava-wait ...): who sent each, who waits, who was released after how long. */
export function renderMessages(messages: MessageView[], now = Date.now()): string {
  return table(
    ['MESSAGE', 'SENT BY', 'KEYS', 'WAITING', 'RELEASED'],
    messages.map((m) => {
      const waiting = m.waits.filter((w) => w.released === undefined);
      const released = m.waits.filter((w) => w.released !== undefined);
      const how = (w: MessageView['waits'][number]): string => `${w.job}${w.mode === 'all' ? ` (all${w.role ? ` ${w.role}` : ''})` : ''}`;
      return [
        m.msg,
        m.senders.map((s) => s.job).join(' ') || '-',
        [...new Set(m.senders.flatMap((s) => s.keys))].join(' ') || '-',
        waiting.map((w) => `${how(w)} for ${formatDuration(Math.max(0, now - w.since))}`).join(', ') || '-',
        released.map((w) => `${how(w)} after ${formatDuration((w.released ?? w.since) - w.since)}`).join(', ') || '-',
      ];
    }),
  );
}
