import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { NatsConnection } from 'nats';
import { connectNats } from '../src/bus/connect';
import { Subjects } from '../src/bus/subjects';
import { ClusterStore } from '../src/cluster/store';
import type { ConnectionConfig } from '../src/core/config';
import { connectRedis } from '../src/core/redis';
import { QueueSet } from '../src/queue/queues';
import { startNats, startRedis } from '../src/services/local-servers';
import type { LocalServer } from '../src/services/local-servers';
import { WorkerProcess } from './worker-process';

export interface EnvironmentOptions {
  /** Use this Redis instead of starting one. */
  redisUrl?: string;
  /** Use this NATS instead of starting one. */
  natsUrl?: string;
  /** NATS connections the simulated nodes share. */
  nodeConnections: number;
  /** Node arguments for the worker processes (e.g. `--cpu-prof`). */
  workerNodeArgs: string[];
  /** Arguments for `cluster-sync worker` (e.g. `--concurrency 16`). */
  workerArgs: string[];
  /** Where worker processes run (CPU profiles land here). */
  workerCwd: string;
  /** Redis behind these sentinels (an HA set the caller started and stops), instead of `redisUrl`. */
  sentinels?: Pick<ConnectionConfig, 'redisSentinels' | 'redisMaster'>;
}

/**
 * Everything one bench run starts, and stops again: Redis and NATS (unless
 * URLs were given), the worker processes, and the bench's own connections.
 * Each run has its own subject and key prefix, so a shared server is safe.
 */
export class Environment {
  readonly servers: LocalServer[] = [];
  workers: WorkerProcess[] = [];
  readonly config: ConnectionConfig;
  readonly redis: Redis;
  readonly store: ClusterStore;
  readonly queues: QueueSet;
  readonly subjects: Subjects;
  /** Connections the simulated nodes use, round robin. */
  readonly nodeNats: NatsConnection[] = [];
  /** The bench's own connection (floor responder, event tracker). */
  nc!: NatsConnection;
  private next = 0;
  private closed = false;

  private constructor(
    config: ConnectionConfig,
    private readonly opts: EnvironmentOptions,
  ) {
    this.config = config;
    this.redis = connectRedis(config, 'cs-bench');
    this.store = new ClusterStore(this.redis, { keyPrefix: config.keyPrefix });
    this.queues = new QueueSet(this.redis, this.store.keys);
    this.subjects = new Subjects(config.subjectPrefix);
  }

  static async start(opts: EnvironmentOptions, servers: LocalServer[] = []): Promise<Environment> {
    let redisUrl = opts.redisUrl;
    let natsUrl = opts.natsUrl;
    const started: LocalServer[] = [...servers];
    try {
      if (!redisUrl && !opts.sentinels) started.push(await startRedis());
      if (!natsUrl) started.push(await startNats());
    } catch (err) {
      await Promise.all(started.map((s) => s.dispose()));
      throw err;
    }
    redisUrl ??= started.find((s) => s.url.startsWith('redis'))?.url ?? 'redis://127.0.0.1:6379';
    natsUrl ??= started.find((s) => s.url.startsWith('nats'))?.url as string;
    const ns = `bench${randomBytes(3).toString('hex')}`;
    const env = new Environment({ redisUrl, natsUrl, subjectPrefix: ns, keyPrefix: `${ns}:`, ...opts.sentinels }, opts);
    env.servers.push(...started);
    try {
      env.nc = await connectNats(env.config, 'cs-bench');
      for (let i = 0; i < opts.nodeConnections; i++) env.nodeNats.push(await connectNats(env.config, `cs-bench-nodes-${i}`));
    } catch (err) {
      await env.close();
      throw err;
    }
    return env;
  }

  /**
   * Another environment on the same NATS (its own subject prefix) with a Redis
   * server of its own, so its INFO commandstats count only its commands: the
   * cost phase measures its holds side by side this way. Undefined when this
   * run was given a Redis URL (then there is one Redis for everything).
   */
  async sibling(nodeConnections: number): Promise<Environment | undefined> {
    if (this.opts.redisUrl) return undefined;
    return Environment.start({ ...this.opts, redisUrl: undefined, natsUrl: this.config.natsUrl, nodeConnections });
  }

  /** A NATS connection for the next simulated node. */
  nodeConnection(): NatsConnection {
    const nc = this.nodeNats[this.next++ % this.nodeNats.length];
    if (!nc) throw new Error('no node connections');
    return nc;
  }

  /** Starts or stops worker processes until `n` run. */
  async setWorkers(n: number): Promise<void> {
    mkdirSync(this.opts.workerCwd, { recursive: true });
    while (this.workers.length < n) {
      const started = await Promise.all(
        Array.from({ length: n - this.workers.length }, () => WorkerProcess.start(this.config, { nodeArgs: this.opts.workerNodeArgs, args: this.opts.workerArgs, cwd: this.opts.workerCwd })),
      );
      this.workers.push(...started);
    }
    while (this.workers.length > n) await this.workers.pop()?.stop();
  }

  /** PIDs of every process this run started (servers and workers), for the record. */
  get pids(): { servers: number[]; workers: number[] } {
    return { servers: this.servers.map((s) => s.pid), workers: this.workers.map((w) => w.pid) };
  }

  /** Stops everything it started, by PID; on servers it did not start, deletes its keys. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.stop()));
    this.workers = [];
    await Promise.all([this.nc, ...this.nodeNats].filter(Boolean).map((c) => c.close().catch(() => undefined)));
    await this.queues.close().catch(() => undefined);
    if ((this.servers.length < 2 || this.opts.sentinels) && this.redis.status === 'ready') await this.deleteKeys().catch(() => undefined);
    await this.redis.quit().catch(() => this.redis.disconnect());
    await Promise.all(this.servers.map((s) => s.dispose()));
  }

  private async deleteKeys(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.config.keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await this.redis.unlink(...keys);
    } while (cursor !== '0');
  }
}
