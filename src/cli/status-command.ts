import type { Command } from 'commander';
import { checkToken } from '../bus/subjects';
import { ClusterStore } from '../cluster/store';
import { InvalidInputError } from '../core/errors';
import { connectRedis } from '../core/redis';
import { clusterEvents, openClusterSummaries } from '../ops/cluster-summary';
import { readMessages } from '../cluster/messages-view';
import { useColor } from '../ops/event-line';
import { renderCluster, renderOpenClusters } from '../ops/status';
import { action, connectionFrom, withConnectionFlags } from './common';
import { AdmissionStore } from '../admission/admission-store';
import { explainWaiting } from '../admission/explain';
import { renderAdmission } from '../admission/render';

export function registerStatus(program: Command): void {
  withConnectionFlags(
    program
      .command('status')
      .argument('[cluster]', 'a cluster id: every node and the event history')
      .description('without a cluster id, a table of open clusters; with one, its nodes, barriers and events'),
  )
    .option('--json', 'print JSON')
    .option('--admission', 'only the machines and the clusters waiting for admission (with --json: {machines, waiting})')
    .action(
      action(async (cluster: string | undefined, opts: Record<string, unknown>) => {
        if (cluster !== undefined) {
          try {
            checkToken(cluster, 'cluster id');
          } catch {
            throw new InvalidInputError('cluster', `${JSON.stringify(cluster)} is not a cluster id`);
          }
        }
        const config = connectionFrom(opts);
        const redis = connectRedis(config.redisUrl, 'cs-status');
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
            return;
          }
          const view = await store.readCluster(cluster);
          const events = await clusterEvents(store, cluster);
          const messages = await readMessages(store, cluster);
          process.stdout.write(`${json ? JSON.stringify({ ...view, messages, events }, null, 2) : renderCluster(view, events, useColor(process.stdout), Date.now(), messages)}\n`);
        } finally {
          await redis.quit().catch(() => undefined);
        }
      }),
    );
}
