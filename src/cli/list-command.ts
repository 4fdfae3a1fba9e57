import type { Command } from 'commander';
import { InvalidInputError } from '../core/errors';
import { parseSince } from '../ops/event-filter';
import type { ClusterRow } from '../results/list';
import { renderList } from '../results/render';
import { action } from './common';
import { ExitCode } from './exit-codes';
import { askScheduler, schedulerTarget, withSchedulerFlags } from './scheduler-http';

export function registerList(program: Command): void {
  withSchedulerFlags(
    program
      .command('list')
      .description('clusters kept by the scheduler (until retention), newest first, with their verdicts')
      .option('--since <when>', 'only clusters created or ended since a duration ago (1d, 2h) or an ISO time')
      .option('--state <state>', 'only open or only ended clusters: open | ended')
      .option('--limit <n>', 'at most this many rows', '200')
      .option('--json', 'print JSON'),
    false,
  ).action(
    action(async (opts: Record<string, unknown>) => {
      const t = schedulerTarget(opts, false);
      const q = new URLSearchParams();
      if (opts.since !== undefined) q.set('since', String(parseSince(String(opts.since))));
      if (opts.state !== undefined) {
        if (opts.state !== 'open' && opts.state !== 'ended') throw new InvalidInputError('command line', `${JSON.stringify(opts.state)}: expected open or ended`, '--state');
        q.set('state', opts.state);
      }
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidInputError('command line', 'must be a whole number from 1 to 1000', '--limit');
      q.set('limit', String(limit));
      const { clusters } = (await askScheduler(t, 'GET', `/clusters?${q.toString()}`)).json<{ clusters: ClusterRow[] }>();
      process.stdout.write(`${opts.json ? JSON.stringify(clusters, null, 2) : renderList(clusters)}\n`);
      return ExitCode.Ok;
    }),
  );
}
