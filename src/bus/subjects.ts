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

/**
 * A testbox is a spec host name without `--N`: letters, digits, ".", "_",
 * "-" (the spec's host name rule). Lab host names have dots
 * (`srv.lab.example.com`), which a subject token cannot hold, so in
 * subjects each "." is written `%2E` (and read back by the dispatcher).
 */
const TESTBOX = /^[A-Za-z0-9_.-]{1,253}$/;

export function checkTestbox(value: string, what = 'testbox'): string {
  if (!TESTBOX.test(value)) throw new Error(`${what} ${JSON.stringify(value)} must be letters, digits, ".", "_" or "-" (a cluster spec host name without its --N), at most 253`);
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
    return TESTBOX.test(testbox) ? testbox : undefined;
  }
}

/** Queue group the workers share, so each report is handled once. */
export const WORKER_QUEUE_GROUP = 'cs-workers';
