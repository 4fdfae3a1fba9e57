import { InvalidInputError } from '../core/errors';
import { parseDuration } from '../core/duration';
import { NODE_STATES, REPORT_KINDS } from '../core/states';
import type { ClusterEvent } from '../fold/outcome';

/** What `watch` shows. Every field is optional; an empty filter shows everything. */
export interface EventFilter {
  /** Only this cluster's events. */
  cluster?: string;
  /** Only this node job's reports, and the resolutions of its cluster (the answers it gets). */
  node?: string;
  /** Only reports that moved a node to this state or are of this kind, and resolutions of this barrier or result. */
  state?: string;
}

/** Values `--state` accepts: node states, report kinds, and `submitted`. */
export const FILTER_STATES: readonly string[] = [...new Set([...NODE_STATES.filter((s) => s !== ''), ...REPORT_KINDS.filter((k) => k !== 'heartbeat'), 'submitted'])];

export function checkStateFilter(state: string | undefined): string | undefined {
  if (state === undefined) return undefined;
  if (!FILTER_STATES.includes(state)) {
    throw new InvalidInputError('--state', `unknown state ${JSON.stringify(state)}; expected one of ${FILTER_STATES.join(', ')}`);
  }
  return state;
}

export function matches(filter: EventFilter, ev: ClusterEvent): boolean {
  if (filter.cluster !== undefined && ev.cluster !== filter.cluster) return false;
  if (filter.node !== undefined && ev.type !== 'resolution' && !((ev.type === 'report' || ev.type === 'message') && ev.job === filter.node)) return false;
  const s = filter.state;
  if (s === undefined) return true;
  switch (ev.type) {
    case 'report':
      return ev.state === s || ev.report === s;
    case 'resolution':
      return ev.barrier === s || ev.result === s;
    case 'submitted':
      return s === 'submitted';
    case 'message':
      return (ev.op === 'send' && s === 'send') || (ev.op === 'wait' && s === 'wait_msg');
  }
}

/**
 * `--since`: a duration back from `now` (`10m`, `2h`, `90s`; a bare number
 * is seconds) or an ISO 8601 time. Returns the time in ms.
 */
export function parseSince(value: string, now = Date.now()): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d)?$/.test(v)) return now - parseDuration(v, '--since', '--since');
  if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t)) {
      if (t > now) throw new InvalidInputError('--since', `${v} is in the future`);
      return t;
    }
  }
  throw new InvalidInputError('--since', `expected a duration like 10m or 2h, or an ISO time like 2026-01-31T08:00:00Z, got ${JSON.stringify(value)}`);
}
