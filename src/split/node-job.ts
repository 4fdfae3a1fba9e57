import type { Mapping, ProgramEntry } from '../job/job';

/**
 * One machine's share of a cluster job, as the scheduler enqueues it and the
 * node agent takes it. Field names follow Compass-CI's job fields where it
 * has one (`testbox`, `queue`, `node_roles`, `direct_macs`, `direct_ips`,
 * `nr_nic`).
 */
export interface NodeJob {
  job_id: string;
  /** The cluster id: the first node job's id. */
  cluster: string;
  /** The cluster's secret; every report must carry it. */
  token: string;
  /** Every node job of the cluster: job id -> its roles (what lava-group and lava-role list print, without a round trip). */
  group: Record<string, string>;
  /** The spec's host this job was made for. */
  host: string;
  testbox: string;
  queue: string;
  /** The host's roles joined by one space. */
  node_roles: string;
  /** The host's macs joined by one space; empty without macs. */
  direct_macs: string;
  /** One 192.168.222.x address per mac, joined by one space. */
  direct_ips: string;
  nr_nic: number;
  /** The cluster spec's name. */
  cluster_spec: string;
  /** True for cs-localhost: this one machine runs every role and waits on no barrier. */
  standalone: boolean;
  /** The job's top-level parameters. */
  params: Mapping;
  /** The programs of this host's roles, in role order then YAML order. */
  programs: ProgramEntry[];
  /** Variables of this host's role blocks. */
  vars: Mapping;
  /** Deadline of each barrier, from the moment the previous one resolved (job field `cluster_timeout`). */
  cluster_timeout_ms: number;
  /** How often the node reports `heartbeat`; silent for 3 intervals means dead. */
  heartbeat_interval_ms: number;
}

/** A node job before ids and the token are assigned (what `split` previews). */
export type NodeJobDraft = Omit<NodeJob, 'job_id' | 'cluster' | 'token' | 'group'>;
