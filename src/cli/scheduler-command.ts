import type { Command } from 'commander';
import { InvalidInputError } from '../core/errors';
import { startScheduler } from '../scheduler/start';
import { registerOpsRoutes } from '../ops/routes';
import { createLogger } from '../core/logger';
import { installProcessGuards } from '../core/process-guards';
import { action, connectionFrom, untilSignal, withConnectionFlags } from './common';

function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65_535 * 1000) throw new InvalidInputError(flag, `${JSON.stringify(v)} is not a whole number`);
    return n;
  };
}

export function registerScheduler(program: Command): void {
  withConnectionFlags(
    program.command('scheduler').description('run the HTTP API: POST /jobs, GET /clusters/:id and the legacy lkp-cluster-sync endpoint'),
  )
    .option('--port <port>', 'port to listen on (lkp-tests\' LKP_CGI_PORT default is 3000; 0: any free port)', positiveInt('--port'), 3000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--cluster-dir <dir>', 'directory of cluster specs named by jobs\' cluster: (like lkp-tests\' cluster/)')
    .option('--token <token>', 'bearer token POST /jobs requires (env CS_API_TOKEN; at least 16 characters)')
    .option('--long-poll <seconds>', 'how long a legacy wait is held before it answers retry', positiveInt('--long-poll'), 300)
    .action(
      action(async (opts: Record<string, unknown>) => {
        const config = connectionFrom(opts);
        installProcessGuards('scheduler', createLogger('cluster-sync-scheduler'));
        const handle = await startScheduler(config, {
          apiToken: (opts.token as string | undefined) ?? process.env.CS_API_TOKEN ?? '',
          clusterDir: opts.clusterDir as string | undefined,
          longPollMs: (opts.longPoll as number) * 1000,
          port: opts.port as number,
          host: opts.host as string,
          routes: [registerOpsRoutes],
        });
        process.stderr.write(`cluster-sync scheduler: listening on ${handle.url} (legacy endpoint ${handle.url}/~lkp/cgi-bin/lkp-cluster-sync)\n`);
        const sig = await untilSignal();
        process.stderr.write(`cluster-sync scheduler: ${sig}, stopping\n`);
        await handle.close();
      }),
    );
}
