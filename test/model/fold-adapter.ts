import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Report } from '../../src/bus/messages';
import { ClusterStore } from '../../src/cluster/store';
import type { NodeEntry } from '../../src/cluster/view';
import { BARRIERS } from '../../src/core/states';
import type { Barrier, NodeState, Result } from '../../src/core/states';
import { asList } from '../../src/fold/outcome';
import type { FoldOutcome } from '../../src/fold/outcome';

import type { NodeJob } from '../../src/split/node-job';

const OBSERVE_LUA = readFileSync(path.join(__dirname, 'observe.lua'), 'utf8');

/**
 * The one place where the model tests touch the real fold: create a
 * cluster, fold a batch of reports, fire a deadline, and read back what a
 * user can see. Everything else in test/model speaks the model's language,
 * so moving from `store.fold(report)` to a batch fold changes this file only.
 */

export interface ClusterSpecForTest {
  cid: string;
  token: string;
  nodes: { job: string; roles: string }[];
  timeoutMs: number;
  /** Roles whose nodes are not essential (meta `optional_roles`). Default none. */
  optionalRoles?: string[];
}

/** What the scripts left in Redis for one cluster, in the model's shape. */
export interface Observed {
  nodes: Record<string, NodeEntry>;
  res: Partial<Record<Barrier, { result: Result; reason?: string }>>;
  final: string | undefined;
  pending: string;
  events: Record<string, unknown>[];
  heartbeats: string[];
  open: boolean;
  /** In `cs/clusters/ended` (what retention reads). */
  ended: boolean;
  /** Named messages: message ID -> its stored record (JSON as messages.lua wrote it). */
  messages: Record<string, string>;
}

export class FoldAdapter {
  readonly store: ClusterStore;

  private readonly observer: Redis & { csModelObserve(numberOfKeys: number, ...args: string[]): Promise<string> };

  constructor(redis: Redis, keyPrefix: string) {
    this.store = new ClusterStore(redis, { keyPrefix });
    // EVALSHA: the script's 1 KB of text is sent (and hashed by Redis) once per connection, not once per step.
    if (!('csModelObserve' in redis)) redis.defineCommand('csModelObserve', { lua: OBSERVE_LUA });
    this.observer = redis as typeof this.observer;
  }

  /** Creates the clusters, each by its own create.lua call, all sent in one socket write. */
  async createClusters(list: ClusterSpecForTest[]): Promise<void> {
    await this.corked(() => Promise.all(list.map((c) => this.createCluster(c))));
  }

  /** Runs `send` with the connection's socket corked: the commands it issues go out in one write. */
  private corked<T>(send: () => Promise<T>): Promise<T> {
    const stream = (this.store.redis as unknown as { stream?: { cork(): void; uncork(): void } }).stream;
    stream?.cork();
    const sent = send();
    stream?.uncork();
    return sent;
  }

  async createCluster(c: ClusterSpecForTest): Promise<void> {
    const group = Object.fromEntries(c.nodes.map((n) => [n.job, n.roles]));
    const jobs: NodeJob[] = c.nodes.map((n) => ({
      job_id: n.job,
      group,
      cluster: c.cid,
      token: c.token,
      host: `${n.job}-host`,
      testbox: 'model',
      queue: 'model',
      node_roles: n.roles,
      direct_macs: '',
      direct_ips: '',
      nr_nic: 2,
      cluster_spec: 'model',
      standalone: false,
      params: {},
      programs: [],
      vars: {},
      cluster_timeout_ms: c.timeoutMs,
      heartbeat_interval_ms: 5000,
    }));
    await this.store.createCluster(jobs, c.optionalRoles && c.optionalRoles.length > 0 ? { optional_roles: c.optionalRoles.join(' ') } : {});
  }

  /** Folds reports in order, each on its own, in one atomic call (DESIGN §5 batches: the fold-batch script). */
  async foldBatch(reports: Report[]): Promise<FoldOutcome[]> {
    return this.store.foldBatch(reports);
  }

  /**
   * Folds a batch and reads the clusters back in the same round trip: the
   * reads go out right behind the script calls on the same connection, and
   * Redis answers them in order, so they see the batch's effects.
   */
  async foldAndObserve(reports: Report[], cids: string[]): Promise<[FoldOutcome[], Record<string, Observed>]> {
    // One socket write for the whole step (a write is a system call, the dearest part of a step here).
    return this.corked(() => Promise.all([this.foldBatch(reports), this.observe(cids)]));
  }

  async timeout(cid: string, barrier: Barrier): Promise<FoldOutcome> {
    return this.store.timeout(cid, barrier);
  }

  async observe(cids: string[]): Promise<Record<string, Observed>> {
    const k = this.store.keys;
    const keys = [k.clusterState, k.heartbeats, k.openClusters, k.endedClusters, ...cids.flatMap((cid) => [k.meta(cid), k.events(cid), k.messages(cid)])];
    const raw = await this.observer.csModelObserve(keys.length, ...keys, ...cids);
    const seen = JSON.parse(raw) as {
      state: string | false;
      meta: string[] | Record<string, never>;
      events: string[] | Record<string, never>;
      heartbeats: string[] | Record<string, never>;
      open: string | false;
      ended: string | false;
      messages: string[] | Record<string, never>;
    }[];
    const out: Record<string, Observed> = {};
    cids.forEach((cid, i) => {
      const o = seen[i]!;
      const flat = asList<string>(o.meta);
      const meta: Record<string, string> = {};
      for (let j = 0; j + 1 < flat.length; j += 2) meta[flat[j]!] = flat[j + 1]!;
      const res: Observed['res'] = {};
      for (const b of BARRIERS) {
        const result = meta[`res:${b}`];
        if (result) res[b] = { result: result as Result, ...(meta[`reason:${b}`] ? { reason: meta[`reason:${b}`] } : {}) };
      }
      const msgs = asList<string>(o.messages);
      const messages: Record<string, string> = {};
      for (let j = 0; j + 1 < msgs.length; j += 2) messages[msgs[j]!] = msgs[j + 1]!;
      out[cid] = {
        nodes: o.state ? (JSON.parse(o.state) as Record<string, NodeEntry>) : {},
        res,
        final: meta.final || undefined,
        pending: meta.pending ?? '',
        events: asList<string>(o.events)
          .map((e) => JSON.parse(e) as Record<string, unknown>)
          .filter((e) => e.type !== 'submitted'),
        heartbeats: asList<string>(o.heartbeats).sort(),
        open: o.open !== false,
        ended: o.ended !== false,
        messages,
      };
    });
    return out;
  }
}

/** A report as a node sends it, for the adapter. */
export function wireReport(r: {
  id: string;
  cluster: string;
  job: string;
  state: Report['state'];
  token: string;
  info?: Report['info'];
  reason?: string;
  msg?: string;
  data?: Record<string, string>;
  mode?: 'any' | 'all';
  role?: string;
}): Report {
  return { v: 1, at: 0, ...r } as Report;
}

export type { NodeState };
