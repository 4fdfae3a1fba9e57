import { InvalidInputError } from '../core/errors';
import type { Command } from 'commander';
import { splitList } from '../scheduler/address-list';
import { startScheduler } from '../scheduler/start';
import { registerOpsRoutes } from '../ops/routes';
import { createLogger } from '../core/logger';
import { installProcessGuards } from '../core/process-guards';
import { waitForNats } from '../core/wait-servers';
import { action, connectionFrom, startupSignal, untilSignal, waitForever, withConnectionFlags } from './common';
import { PORT, intFlag } from './numbers';

/** A comma-separated list from a flag, else from the environment; undefined when neither is set. */
function listFrom(flag: unknown, env: string | undefined): string[] | undefined {
  if (typeof flag === 'string') return splitList(flag); // given but empty: refused by the options' check
  return env === undefined || env === '' ? undefined : splitList(env);
}

export function registerScheduler(program: Command): void {
  withConnectionFlags(
    program
      .command('scheduler')
      .description(
        'run the HTTP API: POST /jobs, GET /clusters[/:id[/result]], DELETE /clusters/:id (cancel), POST /clusters/:id/rerun and the legacy lkp-cluster-sync endpoint; answers 503 while Redis is down',
      ),
  )
    .option('--port <port>', "port to listen on (lkp-tests' LKP_CGI_PORT default is 3000; 0: any free port)", intFlag('--port', PORT), 3000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--cluster-dir <dir>', "directory of cluster specs named by jobs' cluster: (like lkp-tests' cluster/)")
    .option('--token <token>', 'bearer token that submit, cancel and rerun require (env CS_API_TOKEN; required, at least 16 characters)')
    .option('--long-poll <seconds>', 'how long a legacy wait is held before it answers retry', intFlag('--long-poll', { min: 0, max: 86_400 }), 300)
    .option(
      '--legacy-allow <cidrs>',
      'only these addresses or CIDR ranges (comma separated) may use the legacy lkp endpoint; others get 403 (env CS_LEGACY_ALLOW; default: open to all, as Compass-CI)',
    )
    .option('--trusted-proxy <cidrs>', 'believe X-Forwarded-For only from these proxy addresses or ranges, comma separated (env CS_TRUSTED_PROXY; default: ignore the header)')
    .action(
      action(async (opts: Record<string, unknown>) => {
        const config = connectionFrom(opts);
        installProcessGuards('scheduler', createLogger('cluster-sync-scheduler'));
        const allow = listFrom(opts.legacyAllow, process.env.CS_LEGACY_ALLOW);
        const token = (opts.token as string | undefined) ?? process.env.CS_API_TOKEN;
        if (!token) throw new InvalidInputError('command line', 'is required (or env CS_API_TOKEN): the bearer token submit, cancel and rerun must send, at least 16 characters', '--token');
        // NATS is waited for (saying so once per interval); Redis is not: while it is down, requests get 503.
        const startup = startupSignal('cluster-sync scheduler');
        await waitForNats(config, waitForever('cluster-sync scheduler', startup.signal));
        startup.release();
        // Listen before the start, so a signal that arrives while it starts (or right after its ready line) stops it gracefully.
        const stopped = untilSignal('cluster-sync scheduler');
        const handle = await startScheduler(config, {
          apiToken: token,
          clusterDir: opts.clusterDir as string | undefined,
          longPollMs: (opts.longPoll as number) * 1000,
          legacyAllow: allow,
          trustedProxies: listFrom(opts.trustedProxy, process.env.CS_TRUSTED_PROXY),
          port: opts.port as number,
          host: opts.host as string,
          routes: [registerOpsRoutes],
        });
        const who = allow ? `only from ${allow.join(', ')}` : 'open to every address, as Compass-CI; --legacy-allow limits it';
        process.stderr.write(`cluster-sync scheduler: listening on ${handle.url} (legacy endpoint ${handle.url}/~lkp/cgi-bin/lkp-cluster-sync, ${who})\n`);
        const sig = await stopped;
        process.stderr.write(`cluster-sync scheduler: ${sig}, stopping\n`);
        await handle.close();
      }),
    );
}
