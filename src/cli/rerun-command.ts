import type { Command } from 'commander';
import type { SubmitMessage } from '../scheduler/jobs-route';
import { formatSubmitted } from '../scheduler/submit-client';
import { clusterAction } from './cluster-arg';
import { fetchResult, resultExit } from './result-command';
import { askScheduler, idempotencyHeader, withSchedulerFlags } from './scheduler-http';
import { parseDuration } from '../core/duration';

export function registerRerun(program: Command): void {
  withSchedulerFlags(
    program
      .command('rerun')
      .description("submit a cluster's kept job again as a new cluster (new ids; both results link to each other)")
      .argument('<cluster>', 'the cluster to run again')
      .option('--wait', "wait for the new cluster's result and exit with its verdict's code")
      .option('--json', "print the scheduler's answer as JSON"),
    true,
  ).action(
    clusterAction(true, async (cluster, t, opts) => {
      const messages = (await askScheduler(t, 'POST', `/clusters/${encodeURIComponent(cluster)}/rerun`, undefined, undefined, idempotencyHeader())).json<SubmitMessage[]>();
      process.stdout.write(opts.json ? `${JSON.stringify(messages, null, 2)}\n` : `${formatSubmitted(messages).join('\n')}\n`);
      const cid = messages[0]?.cluster;
      if (!opts.wait || cid === undefined) return 0;
      return resultExit(await fetchResult(t, cid, true, parseDuration('2s', '--poll')));
    }),
  );
}
