import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

/**
 * The polling baseline: Compass-CI's multi-device sync as its scheduler does
 * it (src/scheduler/request_cluster_state.cr: request_cluster_state,
 * block_until_state, sync_cluster_state, update_cluster_state,
 * update_cluster_entire_state), re-implemented line for line over the same
 * Redis, behind the same lkp URL, answered over HTTP:
 *
 * - a waiting node's request (`wait_start`, `wait_ready`, `wait_finish`,
 *   `finished`) looks up its cluster in `sched/id2cluster`, writes its state
 *   into the cluster's JSON in `sched/cluster_state` (read, merge, write),
 *   then re-reads that JSON every `pollMs` (Compass-CI: 10 s, for up to 8 h)
 *   until every node is at the state, one is `abort`, or another request
 *   already wrote the cluster's `entire_state`;
 * - on its way out it writes `entire_state` into every node (read, write).
 *
 * One difference: Compass-CI's read-merge-write is not atomic, so two nodes
 * reporting at once can lose one state and hang the barrier until the 8 h
 * limit. Here a per-cluster lock in this process serialises the writes, so
 * the baseline finishes; its Redis commands are Compass-CI's.
 */

const STATES: Record<string, string> = { wait_start: 'start', wait_ready: 'ready', wait_finish: 'finish', finished: 'finish' };

type ClusterState = Record<string, Record<string, string>>;

export class PollingScheduler {
  private readonly redis: Redis;
  private server: http.Server | undefined;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly recorded = new Map<string, number>();
  private readonly waiters = new Map<string, { need: number; resolve: () => void }[]>();
  private readonly stateKey: string;
  private readonly idKey: string;
  url = '';

  constructor(
    redisUrl: string,
    keyPrefix: string,
    private readonly pollMs: number,
  ) {
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: null, connectionName: 'cs-bench-polling' });
    this.stateKey = `${keyPrefix}poll/sched/cluster_state`;
    this.idKey = `${keyPrefix}poll/sched/id2cluster`;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      this.handle(req.url ?? '')
        .then((body) => res.end(body))
        .catch((err: unknown) => {
          res.statusCode = 500;
          res.end(String(err));
        });
    });
    this.server.keepAliveTimeout = 0;
    this.server.requestTimeout = 0;
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** What Compass-CI's submit writes for a cluster: the state JSON and the id map. */
  async createCluster(cluster: string, jobs: { id: string; roles: string }[]): Promise<void> {
    const state: ClusterState = {};
    for (const j of jobs) state[j.id] = { state: '', roles: j.roles, ip: '', direct_ips: '', direct_macs: '' };
    await this.redis.hset(this.stateKey, cluster, JSON.stringify(state));
    for (const j of jobs) await this.redis.hset(this.idKey, j.id, cluster);
  }

  private async handle(url: string): Promise<string> {
    const q = new URL(url, 'http://x').searchParams;
    const state = q.get('state') ?? '';
    const job = q.get('job_id') ?? '';
    const cluster = await this.redis.hget(this.idKey, job);
    if (cluster === null) throw new Error(`unknown job ${job}`);
    const target = STATES[state];
    if (!target) throw new Error(`state ${state} is not a wait`);
    return this.blockUntilState(cluster, job, target);
  }

  private async getClusterState(cluster: string): Promise<ClusterState> {
    const raw = await this.redis.hget(this.stateKey, cluster);
    return raw ? (JSON.parse(raw) as ClusterState) : {};
  }

  private async locked<T>(cluster: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(cluster) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(cluster, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(cluster) === tail) this.locks.delete(cluster);
    }
  }

  private async updateClusterState(cluster: string, job: string, info: Record<string, string>): Promise<void> {
    await this.locked(cluster, async () => {
      const cs = await this.getClusterState(cluster);
      const node = cs[job];
      if (!node) return;
      Object.assign(node, info);
      await this.redis.hset(this.stateKey, cluster, JSON.stringify(cs));
    });
  }

  private async updateClusterEntireState(cluster: string, entire: string): Promise<void> {
    await this.locked(cluster, async () => {
      const cs = await this.getClusterState(cluster);
      for (const node of Object.values(cs)) node.entire_state = entire;
      await this.redis.hset(this.stateKey, cluster, JSON.stringify(cs));
    });
  }

  private async syncClusterState(cluster: string, target: string): Promise<string> {
    const cs = await this.getClusterState(cluster);
    for (const node of Object.values(cs)) {
      if (node.state === 'abort') return 'abort';
      if ((node.entire_state ?? '') === target) return target;
      if (node.state !== target) return 'retry';
    }
    return target;
  }

  private async blockUntilState(cluster: string, job: string, target: string): Promise<string> {
    await this.updateClusterState(cluster, job, { state: target });
    this.noteRecorded(cluster, target);
    let result = '';
    for (let checks = 0; checks < (3600 * 8 * 1000) / this.pollMs; checks++) {
      result = await this.syncClusterState(cluster, target);
      if (result === target || result === 'abort') break;
      await sleep(this.pollMs);
    }
    if (result === 'retry') result = 'abort';
    await this.updateClusterEntireState(cluster, result);
    return result;
  }

  private noteRecorded(cluster: string, target: string): void {
    const key = `${cluster} ${target}`;
    const n = (this.recorded.get(key) ?? 0) + 1;
    this.recorded.set(key, n);
    const ws = this.waiters.get(key) ?? [];
    for (const w of ws.filter((x) => x.need <= n)) w.resolve();
    this.waiters.set(
      key,
      ws.filter((x) => x.need > n),
    );
  }

  /** Resolves once `need` nodes of `cluster` have written `target` (the bench's hook, not Compass-CI's). */
  async stateRecorded(cluster: string, target: string, need: number): Promise<void> {
    const key = `${cluster} ${target}`;
    if ((this.recorded.get(key) ?? 0) >= need) return;
    await new Promise<void>((resolve) => this.waiters.set(key, [...(this.waiters.get(key) ?? []), { need, resolve }]));
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** A node of the baseline: lkp's `http_get_cgi` of the cluster-sync URL, on a keep-alive connection. */
export class PollingNode {
  constructor(
    private readonly url: string,
    readonly job: string,
    private readonly agent: http.Agent,
  ) {}

  async wait(state: string): Promise<{ body: string; at: number }> {
    return new Promise((resolve, reject) => {
      const req = http.get(`${this.url}/~lkp/cgi-bin/lkp-cluster-sync?job_id=${encodeURIComponent(this.job)}&state=${state}`, { agent: this.agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => (res.statusCode === 200 ? resolve({ body, at: performance.now() }) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))));
      });
      req.on('error', reject);
    });
  }
}
