import pc from 'picocolors';
import { formatDuration } from '../core/duration';
import type { ClusterEvent } from '../fold/outcome';

type Colors = ReturnType<typeof pc.createColors>;

/** Whether to colour output: see src/core/terminal.ts. */
export { useColor } from '../core/terminal';

/** `HH:MM:SS.mmm`, local time. */
export function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function resultColor(c: Colors, result: string): (s: string) => string {
  return result === 'abort' ? (s) => c.bold(c.red(s)) : (s) => c.bold(c.green(s));
}

/**
 * One line per event, as `watch` prints it:
 *   time  cluster  node (roles)  report  from -> state
 *   time  cluster  barrier B  result  took T  [reason]
 *   time  cluster  node (roles)  send|wait|wait-all|sync ID  [keys]  [released: job after T, ...]
 */
export function formatEvent(ev: ClusterEvent, color = false): string {
  const c = pc.createColors(color);
  const head = `${c.dim(clock(ev.at))}  ${c.cyan(ev.cluster.padEnd(8))}`;
  switch (ev.type) {
    case 'report': {
      const who = `${ev.job} (${ev.roles || '?'})`.padEnd(20);
      const move = ev.from === ev.state ? `${ev.state || 'submitted'}, info${ev.ip ? ` ip=${ev.ip}` : ''}` : `${ev.from || 'submitted'} -> ${ev.state}`;
      const state = ev.state === 'abort' ? c.red(move) : move;
      const reason = ev.reason ? `  ${c.red(ev.reason)}` : '';
      return `${head}  ${c.yellow(who)}  ${ev.report.padEnd(11)}  ${state}${reason}`;
    }
    case 'resolution': {
      const took = ev.took_ms === undefined ? '' : `  took ${formatDuration(ev.took_ms)}`;
      const reason = ev.reason ? `  ${c.red(ev.reason)}` : '';
      return `${head}  ${c.magenta(`barrier ${ev.barrier}`.padEnd(20))}  ${resultColor(c, ev.result)(ev.result.padEnd(11))}${took}${reason}`;
    }
    case 'submitted':
      return `${head}  ${c.blue('submitted'.padEnd(20))}  ${ev.nodes} node${ev.nodes === 1 ? '' : 's'} (${ev.roles}), spec ${ev.spec}`;
    case 'message':
      return `${head}  ${c.yellow(`${ev.job} (${ev.roles || '?'})`.padEnd(20))}  ${messageLine(c, ev)}`;
  }
}

/** `sync ready`, `send server-ready  ip`, `wait-all done (client)`, then who this fold released and after how long. */
function messageLine(c: Colors, ev: Extract<ClusterEvent, { type: 'message' }>): string {
  const verb = ev.op === 'send' ? (ev.mode === 'all' ? 'sync' : 'send') : ev.mode === 'all' ? 'wait-all' : 'wait';
  const role = ev.role ? ` (${ev.role})` : '';
  const keys = ev.keys && ev.keys.length > 0 ? `  ${ev.keys.join(' ')}` : '';
  const released = ev.released && ev.released.length > 0 ? `  ${c.green(`released ${ev.released.map((r) => `${r.job} after ${formatDuration(r.waited_ms)}`).join(', ')}`)}` : '';
  return `${c.blue(verb.padEnd(8))} ${ev.msg}${role}${keys}${released}`;
}
