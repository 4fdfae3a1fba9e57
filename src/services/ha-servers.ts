import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { ConnectionConfig } from '../core/config';
import { TimeoutError } from '../core/errors';
import { findBinary, freePort, launch, startNats, startRedis } from './local-servers';
import type { LocalServer, NatsServer } from './local-servers';

/**
 * A high-availability set on loopback, as `cluster-sync services --ha` and
 * the tests start it: three NATS servers joined by routes, and a Redis
 * primary with two replicas watched by three sentinels (`redis-server
 * --sentinel`, no other package). Every server is a child process stopped
 * by its PID.
 */
export interface HaSetOptions {
  /** The primary's name at the sentinels. Default `cs-primary`. */
  masterName?: string;
  /** Sentinel `down-after-milliseconds`: how long a silent primary is given before a failover, ms. Default 5000. */
  downAfterMs?: number;
  /** Sentinel `failover-timeout`, ms. Default 10 000. */
  failoverTimeoutMs?: number;
  /**
   * `min-replicas-to-write` of every Redis (a primary with fewer replicas
   * within `min-replicas-max-lag` refuses writes). Default 1; 0 turns it off.
   */
  minReplicasToWrite?: number;
  /** `min-replicas-max-lag`, seconds. Default 5. */
  minReplicasMaxLagS?: number;
}

export interface HaSet {
  readonly masterName: string;
  readonly nats: NatsServer[];
  /** Every Redis of the set; the first one started as the primary. */
  readonly redis: LocalServer[];
  readonly sentinels: LocalServer[];
  /** Every NATS URL, comma separated. */
  readonly natsUrl: string;
  /** `host:port,...` of the sentinels (`--redis-sentinels`). */
  readonly sentinelList: string;
  /** The connection settings of the set (add the prefixes). */
  connection(): Pick<ConnectionConfig, 'natsUrl' | 'redisUrl' | 'redisSentinels' | 'redisMaster'>;
  /** The Redis the sentinels name as primary now. */
  primary(): Promise<LocalServer>;
  /** Resolves when every replica is in sync with the primary and every sentinel knows the others. */
  ready(timeoutMs?: number): Promise<void>;
  /** Stops every server and removes its folder. */
  stop(): Promise<void>;
}

const SYNC_POLL_MS = 50;

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new TimeoutError(`the HA set was not ready within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, SYNC_POLL_MS));
  }
}

/** One command to a server on loopback, on a connection of its own. */
async function ask<T>(port: number, run: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  try {
    await r.connect();
    return await run(r);
  } finally {
    r.disconnect();
  }
}

async function startNatsCluster(): Promise<NatsServer[]> {
  const routePorts = await Promise.all([0, 1, 2].map(() => freePort()));
  const servers: NatsServer[] = [];
  try {
    for (const [i, routePort] of routePorts.entries()) {
      const routes = routePorts.filter((p) => p !== routePort).map((p) => `"nats-route://127.0.0.1:${p}"`);
      const server = await startNats({ configText: `cluster {\n  name: cs\n  listen: 127.0.0.1:${routePort}\n  routes: [${routes.join(', ')}]\n}\nserver_name: cs-nats-${i}\n` });
      servers.push(server);
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.dispose()));
    throw err;
  }
  return servers;
}

function sentinelConfig(port: number, dir: string, name: string, primaryPort: number, o: Required<Pick<HaSetOptions, 'downAfterMs' | 'failoverTimeoutMs'>>): string[] {
  const file = path.join(dir, 'sentinel.conf');
  // Sentinel rewrites its config file with what it learns (replicas, other sentinels, the current primary).
  writeFileSync(
    file,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      'daemonize no',
      `dir ${dir}`,
      `logfile ${path.join(dir, 'sentinel.log')}`,
      `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
      `sentinel down-after-milliseconds ${name} ${o.downAfterMs}`,
      `sentinel failover-timeout ${name} ${o.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n'),
  );
  return [file, '--sentinel'];
}

/** Starts a whole set and waits until it is {@link HaSet.ready}. */
export async function startHaSet(options: HaSetOptions = {}): Promise<HaSet> {
  findBinary('redis-server');
  const name = options.masterName ?? 'cs-primary';
  const downAfterMs = options.downAfterMs ?? 5000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 10_000;
  const minWrite = options.minReplicasToWrite ?? 1;
  const replication = minWrite > 0 ? ['--min-replicas-to-write', String(minWrite), '--min-replicas-max-lag', String(options.minReplicasMaxLagS ?? 5)] : [];
  const started: LocalServer[] = [];
  try {
    const nats = await startNatsCluster();
    started.push(...nats);
    // The primary refuses writes until a replica is attached (min-replicas-to-write); the set is used only once ready.
    const primary = await startRedis({ extraArgs: replication });
    started.push(primary);
    const redis = [primary];
    for (let i = 0; i < 2; i++) {
      const replica = await startRedis({ extraArgs: [...replication, '--replicaof', '127.0.0.1', String(primary.port)] });
      started.push(replica);
      redis.push(replica);
    }
    const sentinels: LocalServer[] = [];
    const startSentinel = launch('sentinel', findBinary('redis-server'), (port, dir) => sentinelConfig(port, dir, name, primary.port, { downAfterMs, failoverTimeoutMs }), 'redis');
    for (let i = 0; i < 3; i++) {
      const s = await startSentinel();
      started.push(s);
      sentinels.push(s);
    }
    const set: HaSet = {
      masterName: name,
      nats,
      redis,
      sentinels,
      natsUrl: nats.map((n) => n.url).join(','),
      sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      connection() {
        return { natsUrl: this.natsUrl, redisUrl: primary.url, redisSentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), redisMaster: name };
      },
      async primary() {
        for (const s of sentinels) {
          const addr = await ask(s.port, (r) => r.call('SENTINEL', 'get-master-addr-by-name', name) as Promise<[string, string] | null>).catch(() => null);
          const found = addr && redis.find((r) => r.port === Number(addr[1]));
          if (found) return found;
        }
        throw new TimeoutError('no sentinel names a primary');
      },
      async ready(timeoutMs = 60_000) {
        const inSync = async (p: LocalServer): Promise<boolean> => {
          const info = await ask(p.port, (r) => r.info('replication'));
          const up = redis.filter((r) => r !== p).length;
          return new RegExp(`connected_slaves:${up}\\b`).test(info) && (info.match(/state=online/g)?.length ?? 0) === up;
        };
        const sentinelsAgree = async (p: LocalServer): Promise<boolean> => {
          for (const s of sentinels) {
            const [master, replicas, others] = await ask(
              s.port,
              async (r) =>
                [
                  (await r.call('SENTINEL', 'get-master-addr-by-name', name)) as [string, string] | null,
                  (await r.call('SENTINEL', 'replicas', name)) as unknown[],
                  (await r.call('SENTINEL', 'sentinels', name)) as unknown[],
                ] as const,
            );
            if (Number(master?.[1]) !== p.port || replicas.length !== redis.length - 1 || others.length !== sentinels.length - 1) return false;
          }
          return true;
        };
        // The primary is asked again at each poll: the sentinels may promote another one meanwhile (two of
        // them can each run a failover of the same primary, one epoch apart, the second undoing the first).
        await until('replicas in sync with the primary, every sentinel naming it and knowing the others', timeoutMs, async () => {
          const p = await set.primary();
          return (await inSync(p)) && (await sentinelsAgree(p));
        });
      },
      async stop() {
        await Promise.all(started.map((s) => s.dispose()));
      },
    };
    await set.ready();
    return set;
  } catch (err) {
    await Promise.all(started.map((s) => s.dispose()));
    throw err;
  }
}

/**
 * Resolves with the new primary's address at the next `+switch-master` a
 * sentinel announces for `name` (its pub/sub channel): the failover
 * happened. Subscribe before causing the failure.
 */
export async function watchSwitchMaster(sentinelPort: number, name: string): Promise<{ next: Promise<{ host: string; port: number }>; close: () => void }> {
  const sub = new Redis(sentinelPort, '127.0.0.1', { maxRetriesPerRequest: null, retryStrategy: (t) => Math.min(50 * t, 500) });
  await sub.subscribe('+switch-master');
  const next = new Promise<{ host: string; port: number }>((resolve) => {
    sub.on('message', (_channel: string, text: string) => {
      // "<name> <old-ip> <old-port> <new-ip> <new-port>"
      const [master, , , host, port] = text.split(' ');
      if (master === name && host && port) resolve({ host, port: Number(port) });
    });
  });
  return { next, close: () => sub.disconnect() };
}
