import type { Command } from 'commander';
import { closeNats, connectNats } from '../bus/connect';
import { Subjects, checkToken } from '../bus/subjects';
import { ClusterStore } from '../cluster/store';
import { InvalidInputError, NotFoundError } from '../core/errors';
import { connectRedis } from '../core/redis';
import { EventFeed } from '../ops/event-feed';
import { checkStateFilter, matches, parseSince } from '../ops/event-filter';
import type { EventFilter } from '../ops/event-filter';
import { formatEvent, useColor } from '../ops/event-line';
import { waitForNats, waitForRedis } from '../core/wait-servers';
import { clusterEvents } from '../ops/cluster-summary';
import { action, connectionFrom, startupSignal, untilSignal, waitForever, withConnectionFlags } from './common';

function checkId(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  try {
    return checkToken(value, flag);
  } catch {
    throw new InvalidInputError(flag, `${JSON.stringify(value)} is not a cluster or job id`);
  }
}

export function registerWatch(program: Command): void {
  withConnectionFlags(
    program.command('watch').description('print cluster events as they happen, one line each; --since replays the past first; --cluster of an ended cluster prints its events and exits'),
  )
    .option('--cluster <id>', 'only this cluster')
    .option('--node <job>', "only this node job's reports, and its cluster's barrier resolutions")
    .option('--state <state>', 'only reports reaching this state (or of this kind) and resolutions of this barrier or result')
    .option('--since <when>', 'first replay events since a duration ago (10m, 2h) or an ISO time, then follow live')
    .option('--json', 'one JSON event per line')
    .action(
      action(async (opts: Record<string, unknown>) => {
        const filter: EventFilter = {
          cluster: checkId(opts.cluster as string | undefined, '--cluster'),
          node: checkId(opts.node as string | undefined, '--node'),
          state: checkStateFilter(opts.state as string | undefined),
        };
        const sinceMs = opts.since === undefined ? undefined : parseSince(opts.since as string);
        const config = connectionFrom(opts);
        const startup = startupSignal('cluster-sync watch');
        await waitForRedis(config, waitForever('cluster-sync watch', startup.signal));
        await waitForNats(config, waitForever('cluster-sync watch', startup.signal));
        startup.release();
        const redis = connectRedis(config, 'cs-watch');
        const store = new ClusterStore(redis, { keyPrefix: config.keyPrefix });
        let feed: EventFeed | undefined;
        const nc = await connectNats(config, 'cluster-sync-watch');
        try {
          if (filter.node !== undefined) {
            const owner = await store.clusterOfJob(filter.node);
            if (owner === undefined) throw new NotFoundError(`--node: unknown node job ${filter.node}`);
            if (filter.cluster !== undefined && filter.cluster !== owner) {
              throw new InvalidInputError('--node', `job ${filter.node} belongs to cluster ${owner}, not ${filter.cluster}`);
            }
            filter.cluster = owner;
          }
          const json = opts.json === true;
          const color = !json && useColor(process.stdout);
          process.stdout.on('error', () => process.exit(0)); // a closed pipe (| head) ends the watch
          if (filter.cluster !== undefined && (await redis.hget(store.keys.meta(filter.cluster), 'final'))) {
            // An ended cluster has nothing more to say: its whole story, then exit.
            const past = (await clusterEvents(store, filter.cluster)).filter((ev) => matches(filter, ev) && (sinceMs === undefined || ev.at >= sinceMs));
            for (const ev of past) process.stdout.write(`${json ? JSON.stringify(ev) : formatEvent(ev, color)}\n`);
            process.stderr.write(`cluster-sync watch: cluster ${filter.cluster} has ended; printed its ${past.length} events\n`);
            return;
          }
          feed = new EventFeed({ redis, nc, keys: store.keys, subjects: new Subjects(config.subjectPrefix), cluster: filter.cluster, sinceMs });
          const { replayed } = await feed.start((ev) => {
            if (matches(filter, ev)) process.stdout.write(`${json ? JSON.stringify(ev) : formatEvent(ev, color)}\n`);
          });
          const what = filter.cluster === undefined ? 'all clusters' : `cluster ${filter.cluster}`;
          process.stderr.write(`cluster-sync watch: ${feed.replays ? `replayed ${replayed} events, ` : ''}following ${what} live; Ctrl-C to stop\n`);
          await untilSignal('cluster-sync watch');
        } finally {
          await feed?.close();
          await closeNats(nc);
          await redis.quit().catch(() => undefined);
        }
      }),
    );
}
