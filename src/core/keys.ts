/**
 * Every Redis key cluster-sync touches, built in one place. The two
 * Compass-CI keys keep their names (with an optional prefix for tests and
 * shared servers) so that Compass-CI's tools keep reading them.
 */
export class Keys {
  constructor(readonly prefix = '') {}

  /** hash: cluster id -> JSON {job id: node entry} (Compass-CI). */
  get clusterState(): string {
    return `${this.prefix}sched/cluster_state`;
  }
  /** hash: node job id -> cluster id (Compass-CI). */
  get id2cluster(): string {
    return `${this.prefix}sched/id2cluster`;
  }
  /** hash: a cluster's token, deadlines, resolutions and settings. */
  meta(cluster: string): string {
    return `${this.prefix}cs/cluster/${cluster}/meta`;
  }
  /** stream: a cluster's append-only event log. */
  events(cluster: string): string {
    return `${this.prefix}cs/cluster/${cluster}/events`;
  }
  /** hash: a cluster's named messages (LAVA MultiNode): message ID -> JSON {seq, senders, order, waits}. */
  messages(cluster: string): string {
    return `${this.prefix}cs/cluster/${cluster}/messages`;
  }
  /** stream: every cluster's events, capped; `watch --since` replays it. */
  get allEvents(): string {
    return `${this.prefix}cs/events`;
  }
  /**
   * hash: report id -> outcome JSON of each report folded into the cluster, so a
   * re-run of the same report repeats its effects and folds nothing twice. Per
   * cluster: no node of another cluster can claim an id here (DESIGN §5).
   */
  reports(cluster: string): string {
    return `${this.prefix}cs/cluster/${cluster}/reports`;
  }
  /** zset: "cluster job" -> time (ms) after which a silent node is dead. */
  get heartbeats(): string {
    return `${this.prefix}cs/heartbeats`;
  }
  /**
   * Every key one cluster owns, all under `cs/cluster/<cid>/`. Retention
   * deletes exactly these, plus the cluster's fields and members in the
   * global hashes and zsets ({@link clusterState}, {@link id2cluster},
   * {@link openClusters}, {@link heartbeats}, {@link submitting},
   * {@link deadlines}, {@link specClusters}) and its BullMQ node and deadline jobs.
   */
  clusterKeys(cluster: string): string[] {
    return [this.meta(cluster), this.events(cluster), this.reports(cluster), this.messages(cluster), this.nodeLocks(cluster)];
  }
  /**
   * hash: node job id -> `"<testbox> <lock token>"` handed out with it, so
   * that the node's `done` is recorded whichever dispatcher gets it, even
   * after BullMQ's own lock lapsed (its holder was paused or died).
   */
  nodeLocks(cluster: string): string {
    return `${this.prefix}cs/cluster/${cluster}/locks`;
  }
  /** zset: barrier deadlines, member `"<cid> <barrier>"`, score = time (ms). */
  get deadlines(): string {
    return `${this.prefix}cs/deadlines`;
  }
  /**
   * zset: clusters whose submit has not finished queueing their node jobs
   * -> creation time (ms). Written by create.lua, cleared by submit; what is
   * left there a while later the workers' reaper finishes or removes.
   */
  get submitting(): string {
    return `${this.prefix}cs/clusters/submitting`;
  }
  /**
   * string: the per-second sweep's lease, `SET NX PX` by the worker process
   * that runs this period's sweep; it lapses by itself, so a process that
   * dies or stalls holds nothing.
   */
  get sweepLease(): string {
    return `${this.prefix}cs/sweep/lease`;
  }
  /** string: where retention's walk over {@link clusterState} (HSCAN) continues. */
  get retentionCursor(): string {
    return `${this.prefix}cs/retention/cursor`;
  }
  /**
   * zset: ended cluster id -> when it ended (ms: its final resolution).
   * Written by the fold and timeout.lua in the call that ends the cluster;
   * retention deletes what is older than the retention period, reading
   * only those.
   */
  get endedClusters(): string {
    return `${this.prefix}cs/clusters/ended`;
  }
  /**
   * zset: ended clusters whose job allows retries (`cluster_retries` > 0) ->
   * when they ended (ms). Written by the call that ends the cluster; the
   * workers' retrier (src/results/retries.ts) judges each once, after its
   * backoff, and removes it.
   */
  get retryDue(): string {
    return `${this.prefix}cs/clusters/retry`;
  }
  /**
   * string: what a request with an `Idempotency-Key` header was answered
   * (JSON `{state, fingerprint, answer}`), for its repeats
   * (src/scheduler/idempotency.ts). `scope` names the route.
   */
  idempotency(scope: string, key: string): string {
    return `${this.prefix}cs/idempotency/${scope}/${key}`;
  }
  /** zset: open cluster id -> creation time (ms). */
  get openClusters(): string {
    return `${this.prefix}cs/clusters/open`;
  }
  /**
   * zset: the clusters made from spec `spec`, cluster id -> creation time (ms).
   * How the legacy endpoint finds the node job of a client that sends no
   * job_id (intel's lkp-tests: `cluster=<spec>&node=<host>`). A global index:
   * deleting a cluster removes it from here too.
   */
  specClusters(spec: string): string {
    return `${this.prefix}cs/spec/${spec}/clusters`;
  }
  /** counter behind node job ids. */
  get jobSeq(): string {
    return `${this.prefix}cs/seq/job`;
  }
  /** BullMQ's key prefix. */
  get bullPrefix(): string {
    return `${this.prefix}cs-bull`;
  }
  /** hash: BullMQ's meta of queue `queue`, written with its first job (`*` as `queue`: a SCAN pattern of every queue's). */
  bullQueueMeta(queue: string): string {
    return `${this.bullPrefix}:${queue}:meta`;
  }
  /** string: BullMQ's lock of job `id` in queue `queue`, present while a worker holds the job. */
  bullJobLock(queue: string, id: string): string {
    return `${this.bullPrefix}:${queue}:${id}:lock`;
  }

  /** hash: machine id -> JSON machine record (testbox, state, job, lease; src/admission). */
  get machines(): string {
    return `${this.prefix}cs/machines`;
  }
  /** zset: machine id -> when its lease lapses (ms); a gone machine's record stays listed until its second lapse. */
  get machineLeases(): string {
    return `${this.prefix}cs/machines/leases`;
  }
  /** hash: testbox -> when its last live machine's lease lapses (ms): "no live machine for 3m". */
  get testboxSeen(): string {
    return `${this.prefix}cs/admit/testbox-seen`;
  }
  /** zset: clusters waiting for admission -> order (priority, then creation time). */
  get admitWaiting(): string {
    return `${this.prefix}cs/admit/waiting`;
  }
  /** zset: waiting clusters -> their admit deadline (ms), indexed by the admission sweep so it reads only the due ones. */
  get admitDue(): string {
    return `${this.prefix}cs/admit/due`;
  }
  /** zset: admitted clusters some of whose node jobs no machine took yet -> admission time (ms). */
  get admitAssigned(): string {
    return `${this.prefix}cs/admit/assigned`;
  }
  /** string: score in {@link endedClusters} up to which ended clusters were reaped by admission. */
  get admitReapCursor(): string {
    return `${this.prefix}cs/admit/reap-cursor`;
  }
  /** string: the admission sweep's lease (`SET NX PX`), like {@link sweepLease}. */
  get admitSweepLease(): string {
    return `${this.prefix}cs/admit/sweep-lease`;
  }
  /** zset: the idle machines of a testbox -> idle since (ms). */
  testboxIdle(testbox: string): string {
    return `${this.prefix}cs/admit/testbox/${testbox}/idle`;
  }
  /** zset: the live machines of a testbox (any state) -> when their lease lapses (ms). */
  testboxLive(testbox: string): string {
    return `${this.prefix}cs/admit/testbox/${testbox}/live`;
  }

  /**
   * The first eight keys of every script that ends one cluster (timeout.lua,
   * end-cluster.lua, admit-expire.lua: KEYS[1..8], in this order), the keys
   * that common.lua's resolution writes.
   */
  endKeys(cluster: string): [string, string, string, string, string, string, string, string] {
    return [this.clusterState, this.meta(cluster), this.events(cluster), this.allEvents, this.heartbeats, this.openClusters, this.deadlines, this.endedClusters];
  }
}
