import type { Command } from 'commander';
import { startWorkers } from '../../workers';
import { action, connectionFrom, untilSignal, withConnectionFlags } from './common';

export function registerWorker(program: Command): void {
  withConnectionFlags(program.command('worker').description('run the workers: report bridge, fold, deadlines, dead-node sweep'))
    .option('--concurrency <n>', 'reports folded at once', (v) => Number(v), 64)
    .action(
      action(async (opts: Record<string, unknown>) => {
        const config = connectionFrom(opts);
        const handle = await startWorkers(config, { concurrency: opts.concurrency as number });
        const sig = await untilSignal();
        process.stderr.write(`cluster-sync worker: ${sig}, stopping\n`);
        await handle.close();
      }),
    );
}
