import type { Command } from 'commander';
import { ClusterStore } from '../cluster/store';
import { parseDuration } from '../core/duration';
import { connectRedisBounded } from '../core/wait-servers';
import { clusterEvents, openClusterSummaries } from '../ops/cluster-summary';
import { readMessages } from '../cluster/messages-view';
import { useColor } from '../ops/event-line';
import { renderCluster, renderOpenClusters } from '../ops/status';
import { readResult } from '../results/result';
import { action, connectionFrom, withRedisFlags } from './common';
import { checkClusterId } from './cluster-arg';
import { ExitCode, VERDICT_EXIT } from './exit-codes';
import { DEFAULT_GIVE_UP } from './scheduler-http';
import { AdmissionStore } from '../admission/admission-store';
import { explainWaiting } from '../admission/explain';
import { renderAdmission } from '../admission/render';

export function registerStatus(program: Command): void {
  withRedisFlags(
    program
      .command('status')
      .argument('[cluster]', 'a cluster id: every node and the event history')
      .description("without a cluster id, a table of open clusters; with one, its nodes, barriers and events, exiting with its verdict's code once it ended (0 while open)"),
  )
    .option('--json', 'print JSON')
    .option('--give-up <duration>', 'how long to wait for a Redis that does not answer before exiting 69 (env CS_GIVE_UP)', process.env.CS_GIVE_UP || DEFAULT_GIVE_UP)
    .option('--admission', 'only the machines and the clusters waiting for admission (with --json: {machines, waiting})')
    .action(
      action(async (cluster: string | undefined, opts: Record<string, unknown>) => {
        if (cluster !== undefined) checkClusterId(cluster);
        const config = connectionFrom(opts);
        const giveUpMs = parseDuration(opts.giveUp, '--give-up', 'command line');
        const redis = await connectRedisBounded(config, 'cs-status', { say: (l) => void process.stderr.write(`cluster-sync: ${l}\n`), giveUpMs, intervalMs: 5000 });
        try {
          const store = new ClusterStore(redis, { keyPrefix: config.keyPrefix });
          const json = opts.json === true;
          if (cluster === undefined) {
            const admission = new AdmissionStore(redis, store.keys);
            const [machines, waiting] = await Promise.all([admission.machines(), explainWaiting(admission)]);
            const now = await store.now();
            if (opts.admission === true) {
              process.stdout.write(`${json ? JSON.stringify({ machines, waiting }, null, 2) : renderAdmission(machines, waiting, now)}\n`);
              return;
            }
            const rows = await openClusterSummaries(store);
            // Labs without admission (lkp clients, --admission fifo) see the table alone, as before.
            const more = machines.length + waiting.length > 0 ? `\n\n${renderAdmission(machines, waiting, now)}` : '';
            process.stdout.write(`${json ? JSON.stringify(rows, null, 2) : `${renderOpenClusters(rows)}${more}`}\n`);
            return ExitCode.Ok;
          }
          const view = await store.readCluster(cluster);
          const events = await clusterEvents(store, cluster);
          const messages = await readMessages(store, cluster);
          const result = await readResult(store, cluster);
          const verdict = result.state === 'ended' ? { verdict: result.verdict, end_cause: result.end_cause } : {};
          process.stdout.write(
            `${json ? JSON.stringify({ ...view, ...verdict, messages, events }, null, 2) : `${renderCluster(view, events, useColor(process.stdout), Date.now(), messages)}${result.state === 'ended' ? `\nverdict: ${result.verdict} (${result.end_cause})` : ''}`}\n`,
          );
          // An open cluster has not failed (yet): 0; an ended one exits with its verdict's code.
          return result.state === 'ended' && result.verdict ? (VERDICT_EXIT[result.verdict] ?? ExitCode.Failed) : ExitCode.Ok;
        } finally {
          await redis.quit().catch(() => redis.disconnect());
        }
      }),
    );
}
