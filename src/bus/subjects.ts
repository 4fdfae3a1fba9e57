/**
 * NATS subjects (DESIGN §5), built in one place. Cluster ids and testbox
 * names become single subject tokens, so they are checked to hold no `.`,
 * `*`, `>` or white space.
 */
const TOKEN = /^[A-Za-z0-9_+=,@%-][A-Za-z0-9_+=,@%.-]*$/;

export function checkToken(value: string, what: string): string {
  if (!TOKEN.test(value) || value.includes('.')) throw new Error(`${what} ${JSON.stringify(value)} cannot be a NATS subject token`);
  return value;
}

export class Subjects {
  constructor(readonly prefix = 'cs') {}
  /** node -> workers (request): a status report. */
  report(cluster: string): string {
    return `${this.prefix}.cluster.${checkToken(cluster, 'cluster id')}.report`;
  }
  /** workers -> nodes: barrier resolutions. */
  barrier(cluster: string): string {
    return `${this.prefix}.cluster.${checkToken(cluster, 'cluster id')}.barrier`;
  }
  /** workers -> nodes: a named message's state after each fold that touched it (LAVA MultiNode). */
  message(cluster: string): string {
    return `${this.prefix}.cluster.${checkToken(cluster, 'cluster id')}.msg`;
  }
  /** workers -> ops: every folded report and every resolution. */
  event(cluster: string): string {
    return `${this.prefix}.cluster.${checkToken(cluster, 'cluster id')}.event`;
  }
  /** node -> workers (request): read the cluster (roles_ip). An addition to DESIGN §5: nodes talk NATS only. */
  query(cluster: string): string {
    return `${this.prefix}.cluster.${checkToken(cluster, 'cluster id')}.query`;
  }
  /** node -> dispatcher (request): the next node job of a testbox queue. */
  take(testbox: string): string {
    return `${this.prefix}.queue.${checkToken(testbox, 'testbox')}.take`;
  }
  /** node -> dispatcher (request): a node job ended (completed or failed). */
  done(testbox: string): string {
    return `${this.prefix}.queue.${checkToken(testbox, 'testbox')}.done`;
  }
  get allReports(): string {
    return `${this.prefix}.cluster.*.report`;
  }
  get allQueries(): string {
    return `${this.prefix}.cluster.*.query`;
  }
  /** Every cluster's named-message states (LAVA MultiNode). */
  get allMessages(): string {
    return `${this.prefix}.cluster.*.msg`;
  }
  get allEvents(): string {
    return `${this.prefix}.cluster.*.event`;
  }
  get allTakes(): string {
    return `${this.prefix}.queue.*.take`;
  }
  get allDones(): string {
    return `${this.prefix}.queue.*.done`;
  }
  /** The cluster id token of a `<prefix>.cluster.<cid>.<verb>` subject. */
  clusterOf(subject: string): string | undefined {
    const rest = subject.slice(this.prefix.length + 1).split('.');
    return rest[0] === 'cluster' ? rest[1] : undefined;
  }
  testboxOf(subject: string): string | undefined {
    const rest = subject.slice(this.prefix.length + 1).split('.');
    return rest[0] === 'queue' ? rest[1] : undefined;
  }
}

/** Queue group the workers share, so each report is handled once. */
export const WORKER_QUEUE_GROUP = 'cs-workers';
