import { Option } from 'commander';
import type { Command } from 'commander';
import { startNats, startRedis } from '../services/local-servers';
import { action, untilSignal } from './common';
import { PORT, intFlag } from './numbers';

export function registerServices(program: Command): void {
  program
    .command('services')
    .description('start a local Redis and NATS on loopback (for someone who has neither) until Ctrl-C')
    .option('--redis-port <port>', 'Redis port (default: a free one)', intFlag('--redis-port', { ...PORT, min: 1 }))
    .option('--nats-port <port>', 'NATS port (default: a free one)', intFlag('--nats-port', { ...PORT, min: 1 }))
    .addOption(new Option('--appendfsync <mode>', 'Redis AOF fsync (see docs/guarantees.md)').choices(['no', 'everysec', 'always']).default('always'))
    .action(
      action(async (opts: { redisPort?: number; natsPort?: number; appendfsync: 'no' | 'everysec' | 'always' }) => {
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
