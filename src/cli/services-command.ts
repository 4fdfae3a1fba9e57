import { Option } from 'commander';
import type { Command } from 'commander';
import { startHaSet } from '../services/ha-servers';
import { startNats, startRedis } from '../services/local-servers';
import { action, untilSignal } from './common';
import { PORT, intFlag } from './numbers';

export function registerServices(program: Command): void {
  program
    .command('services')
    .description('start a local Redis and NATS on loopback (for someone who has neither) until Ctrl-C')
    .option('--redis-port <port>', 'Redis port (default: a free one)', intFlag('--redis-port', { ...PORT, min: 1 }))
    .option('--nats-port <port>', 'NATS port (default: a free one)', intFlag('--nats-port', { ...PORT, min: 1 }))
    .option('--ha', 'a high-availability set instead: 3 NATS servers in a cluster, a Redis primary with 2 replicas and 3 sentinels')
    .option('--down-after-ms <ms>', 'with --ha: how long the sentinels give a silent primary before a failover (default 5000)', intFlag('--down-after-ms', { min: 100, what: 'milliseconds' }))
    .addOption(new Option('--appendfsync <mode>', 'Redis AOF fsync (see docs/guarantees.md)').choices(['no', 'everysec', 'always']).default('always'))
    .action(
      action(async (opts: { redisPort?: number; natsPort?: number; appendfsync: 'no' | 'everysec' | 'always'; ha?: boolean; downAfterMs?: number }) => {
        if (opts.ha) return runHaSet(opts.downAfterMs);
        const redis = await startRedis({ port: opts.redisPort, appendfsync: opts.appendfsync });
        const nats = await startNats({ port: opts.natsPort });
        process.stdout.write(
          `Redis listens on ${redis.url} (pid ${redis.pid}, data in ${redis.dir})\n` +
            `NATS listens on ${nats.url} (pid ${nats.pid})\n\n` +
            `In another shell:\n  export CS_REDIS_URL=${redis.url} CS_NATS_URL=${nats.url}\n  cluster-sync worker\n\nCtrl-C stops both.\n`,
        );
        await untilSignal();
        await Promise.all([nats.dispose(), redis.stop()]);
      }),
    );
}

async function runHaSet(downAfterMs: number | undefined): Promise<void> {
  process.stdout.write('starting 3 NATS servers, a Redis primary, 2 replicas and 3 sentinels on 127.0.0.1 ...\n');
  const set = await startHaSet({ downAfterMs });
  const primary = await set.primary();
  const lines = [
    ...set.nats.map((n, i) => `NATS ${i + 1} listens on ${n.url} (pid ${n.pid})`),
    ...set.redis.map((r) => `Redis ${r === primary ? 'primary' : 'replica'} listens on ${r.url} (pid ${r.pid}, data in ${r.dir})`),
    ...set.sentinels.map((s, i) => `Sentinel ${i + 1} listens on 127.0.0.1:${s.port} (pid ${s.pid}), watching "${set.masterName}"`),
  ];
  process.stdout.write(
    `${lines.join('\n')}\n\nIn another shell:\n  export CS_NATS_URL=${set.natsUrl} CS_REDIS_SENTINELS=${set.sentinelList} CS_REDIS_MASTER=${set.masterName}\n  cluster-sync worker\n\nCtrl-C stops all ${lines.length}.\n`,
  );
  await untilSignal();
  await set.stop();
}
