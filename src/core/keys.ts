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
  /** Every key one cluster owns (retention deletes exactly these). */
  clusterKeys(cluster: string): string[] {
    return [this.meta(cluster), this.events(cluster), this.reports(cluster), this.messages(cluster)];
  }
  /** zset: "cluster job" -> time (ms) after which a silent node is dead. */
  get heartbeats(): string {
    return `${this.prefix}cs/heartbeats`;
  }
  /** zset: "cluster barrier" -> the barrier's deadline (ms); the sweep fires the due ones. */
  get deadlines(): string {
    return `${this.prefix}cs/deadlines`;
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
}
