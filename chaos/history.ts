/**
 * What every client of a chaos run saw, in order, with times (ms since the
 * run began): the reports it sent, their acknowledgements and rejections,
 * the answers it heard, and the faults the run injected. The checker reads
 * only this and the servers' records.
 */
export type HistoryKind =
  | 'held' // a report waits for its client's pause to end before it goes out (what: its kind)
  | 'send' // a report went out (NodeClient or the legacy endpoint)
  | 'ack' // the workers accepted it (it is durable)
  | 'reject' // the workers refused it
  | 'error' // the client gave up or failed
  | 'answer' // a node's wait returned this barrier result
  | 'broadcast' // the observer heard a barrier resolution on NATS
  | 'dup' // a report sent again with the same id (a retry, a late copy)
  | 'late' // a report sent after the cluster ended
  | 'die' // the node stops its heartbeats and reports (a dead machine)
  | 'hang' // the node stops reporting but keeps its heartbeats (a hung test)
  | 'pause' // the node's client is paused (network pause)
  | 'fault' // a fault begins
  | 'healed' // a fault ends
  | 'submit' // a cluster was submitted
  | 'take' // a node took its node job from the dispatcher
  | 'done' // a node told the dispatcher how its node job ended (what: outcome, result: ok | refused | error, detail: reason)
  | 'machine' // a machine (admission agent) came, left or died (what: come | leave | die)
  | 'note';

export interface HistoryLine {
  n: number;
  t: number;
  kind: HistoryKind;
  cluster?: string;
  job?: string;
  /** report kind, or fault kind */
  what?: string;
  id?: string;
  barrier?: string;
  result?: string;
  legacy?: boolean;
  /** The machine (admission agent) that took the node job, or that came, left or died. */
  machine?: string;
  detail?: string;
}

export class History {
  readonly lines: HistoryLine[] = [];
  readonly t0 = Date.now();

  add(line: Omit<HistoryLine, 'n' | 't'>): HistoryLine {
    const l = { n: this.lines.length, t: Date.now() - this.t0, ...line };
    this.lines.push(l);
    return l;
  }

  now(): number {
    return Date.now() - this.t0;
  }
}

/**
 * True while a report of `cluster` that a node sent (or sent again) has no
 * acknowledgement, refusal or error yet, or one is held by its client's
 * pause and not sent yet. A node's life can end with one still being retried
 * (its wait answered by the cluster's abort while Redis refused the report),
 * or still held (its wait answered by the abort that its pause caused: a dead
 * node), so its fold records are read only once this is false.
 */
export function reportsInFlight(lines: readonly HistoryLine[], cluster: string): boolean {
  const open = new Map<string, number>();
  const add = (key: string, n: number): void => void open.set(key, (open.get(key) ?? 0) + n);
  for (const l of lines) {
    if (l.cluster !== cluster || l.what === 'heartbeat') continue;
    if (l.kind === 'held') add(`held ${l.job} ${l.what}`, 1);
    if (!l.id) continue;
    if (l.kind === 'send') add(`held ${l.job} ${l.what}`, -1);
    if (l.kind === 'send' || l.kind === 'dup') add(l.id, 1);
    else if (l.kind === 'ack' || l.kind === 'reject' || l.kind === 'error') add(l.id, -1);
  }
  return [...open.values()].some((n) => n > 0);
}

export function formatLine(l: HistoryLine): string {
  const parts = [`#${l.n}`, `${(l.t / 1000).toFixed(3)}s`, l.kind];
  if (l.cluster) parts.push(`cluster=${l.cluster}`);
  if (l.job) parts.push(`job=${l.job}`);
  if (l.what) parts.push(l.what);
  if (l.id) parts.push(`id=${l.id}`);
  if (l.barrier) parts.push(`${l.barrier}=${l.result ?? '?'}`);
  else if (l.result) parts.push(`-> ${l.result}`);
  if (l.legacy) parts.push('(legacy)');
  if (l.machine) parts.push(`machine=${l.machine}`);
  if (l.detail) parts.push(`- ${l.detail}`);
  return parts.join(' ');
}
