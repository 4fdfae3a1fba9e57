import { randomBytes } from 'node:crypto';
import type { NodeJob, NodeJobDraft } from '../split/node-job';
import { testboxQueueName } from '../queue/queues';
import { MAX_CLUSTER_TIMEOUT_MS, MIN_CLUSTER_TIMEOUT_MS } from '../split/split';
import type { StoreContext } from './store-context';
import type { NodeEntry } from './view';

/** The submit's writes: job ids, the cluster's creation (one script), and the mark that its submit is complete. */
export class SubmitStore {
  constructor(private readonly ctx: StoreContext) {}

  /** Gives each draft a job id (the first is the cluster id) and the cluster's token. */
  async assignIds(drafts: NodeJobDraft[]): Promise<NodeJob[]> {
    const last = await this.ctx.redis.incrby(this.ctx.keys.jobSeq, drafts.length);
    const first = last - drafts.length + 1;
    const ids = drafts.map((_, i) => `${this.ctx.jobIdPrefix}-${first + i}`);
    const cluster = ids[0] as string;
    const token = randomBytes(24).toString('base64url');
    const group = Object.fromEntries(drafts.map((d, i) => [ids[i] as string, d.node_roles]));
    return drafts.map((d, i) => ({ ...d, job_id: ids[i] as string, cluster, token, group }));
  }

  /**
   * Writes the cluster's state, id map, meta (with the start deadline) and
   * "submitted" event in one script (create.lua), and marks the cluster as
   * being submitted until {@link markQueued}. Returns the creation time and the event's id.
   */
  async createCluster(jobs: NodeJob[], extraMeta: Record<string, string | number> = {}): Promise<{ created: number; event: string }> {
    const first = jobs[0];
    if (!first) throw new Error('a cluster needs at least one node job');
    const cid = first.cluster;
    const nodes: Record<string, NodeEntry> = {};
    for (const j of jobs) {
      nodes[j.job_id] = { state: '', roles: j.node_roles, ip: '', direct_ips: j.direct_ips, direct_macs: j.direct_macs, entire_state: '' };
    }
    const meta = {
      token: first.token,
      spec: first.cluster_spec,
      nodes: jobs.length,
      roles: clusterRoles(jobs),
      timeout_ms: first.cluster_timeout_ms,
      heartbeat_ms: first.heartbeat_interval_ms,
      standalone: first.standalone ? 1 : 0,
      // the node job of each spec host, for clients that send no job_id
      ...Object.fromEntries(jobs.map((j) => [hostField(j.host), j.job_id])),
      // Where each node job waits: what the reaper and retention remove.
      queues: JSON.stringify(Object.fromEntries(jobs.map((j) => [j.job_id, testboxQueueName(j.queue)]))),
      // The policy, the job and its lineage (src/results/history.ts).
      ...extraMeta,
    };
    const event = { v: 1, type: 'submitted', cluster: cid, nodes: jobs.length, roles: meta.roles, spec: meta.spec };
    const k = this.ctx.keys;
    const [created, id] = await this.ctx.redis.csCreate(
      k.clusterState,
      k.id2cluster,
      k.meta(cid),
      k.events(cid),
      k.allEvents,
      k.openClusters,
      k.submitting,
      k.deadlines,
      k.specClusters(first.cluster_spec),
      cid,
      JSON.stringify(nodes),
      JSON.stringify(meta),
      JSON.stringify(event),
      this.ctx.maxEvents,
      MIN_CLUSTER_TIMEOUT_MS,
      MAX_CLUSTER_TIMEOUT_MS,
    );
    return { created: Number(created), event: id };
  }

  /** The cluster's node jobs are queued (with its first deadline): its submit is complete. */
  async markQueued(cid: string): Promise<void> {
    await this.ctx.redis.zrem(this.ctx.keys.submitting, cid);
  }
}

/** The meta field holding the node job id of spec host `host`. */
export function hostField(host: string): string {
  return `host:${host}`;
}

/** Every role of a cluster's nodes, once each, in node order. */
export function clusterRoles(jobs: readonly NodeJob[]): string {
  return [...new Set(jobs.flatMap((j) => j.node_roles.split(' ')))].join(' ');
}
