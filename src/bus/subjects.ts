import { idProblem, isId } from '../core/ids';

/**
 * NATS subjects (DESIGN §5), built in one place. Cluster ids and testbox
 * names are checked by the one identifier rule (src/core/ids.ts) before a
 * subject is built from them, so no subject holds a wildcard or white space
 * or comes near the server's control-line limit; a cluster id becomes a
 * single subject token, so it holds no `.`.
 */
export function checkToken(value: string, what: string): string {
  const problem = idProblem(value, what.startsWith('cluster') ? 'cluster id' : 'subject token');
  if (problem !== undefined) throw new Error(`${what}: ${problem}`);
  return value;
}

/**
 * A testbox is a spec host name without `--N` (the identifier rule: letters,
 * digits, ".", "_", "-"). Lab host names have dots (`srv.lab.example.com`),
 * which a subject token cannot hold, so in subjects each "." is written
 * `%2E` (and read back by the dispatcher).
 */
export function checkTestbox(value: string, what = 'testbox'): string {
  const problem = idProblem(value, 'testbox');
  if (problem !== undefined) throw new Error(`${what}: ${problem} (a cluster spec host name without its --N)`);
  return value;
}

function encodeTestbox(testbox: string): string {
  return checkTestbox(testbox).replace(/\./g, '%2E');
}

export class Subjects {
  /** Every cluster's reports: the workers' bridge listens here. */
  readonly allReports: string;
  /** Every cluster's queries (roles_ip). */
  readonly allQueries: string;
  /** Every cluster's named-message states (LAVA MultiNode). */
  readonly allMessages: string;
  /** Every cluster's events. */
  readonly allEvents: string;
  /** Every testbox queue's take requests: the dispatchers listen here. */
  readonly allTakes: string;
  /** Every testbox queue's done requests. */
  readonly allDones: string;

  constructor(readonly prefix = 'cs') {
    const every = (room: 'cluster' | 'queue', verb: string): string => `${prefix}.${room}.*.${verb}`;
    this.allReports = every('cluster', 'report');
    this.allQueries = every('cluster', 'query');
    this.allMessages = every('cluster', 'msg');
    this.allEvents = every('cluster', 'event');
    this.allTakes = every('queue', 'take');
    this.allDones = every('queue', 'done');
  }
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
    return `${this.prefix}.queue.${encodeTestbox(testbox)}.take`;
  }
  /** node -> dispatcher (request): a node job ended (completed or failed). */
  done(testbox: string): string {
    return `${this.prefix}.queue.${encodeTestbox(testbox)}.done`;
  }
  /** The cluster id token of a `<prefix>.cluster.<cid>.<verb>` subject. */
  clusterOf(subject: string): string | undefined {
    const rest = subject.slice(this.prefix.length + 1).split('.');
    return rest[0] === 'cluster' ? rest[1] : undefined;
  }
  /** The testbox of a `<prefix>.queue.<testbox>.<verb>` subject, its `%2E` read back as "."; undefined when it is no testbox. */
  testboxOf(subject: string): string | undefined {
    const rest = subject.slice(this.prefix.length + 1).split('.');
    if (rest[0] !== 'queue' || rest[1] === undefined) return undefined;
    const testbox = rest[1].replace(/%2E/g, '.');
    return isId(testbox, 'testbox') ? testbox : undefined;
  }
}

/** Queue group the workers share, so each report is handled once. */
export const WORKER_QUEUE_GROUP = 'cs-workers';
