import type { Command } from 'commander';
import { closeNats, connectNats } from '../bus/connect';
import { Subjects } from '../bus/subjects';
import { ClusterSyncError, ErrorCode } from '../core/errors';
import { formatEvent, useColor } from '../ops/event-line';
import type { SubmitMessage } from '../scheduler/jobs-route';
import { formatSubmitted, localSpecFor } from '../scheduler/submit-client';
import { watchClusters } from '../scheduler/watch-clusters';
import { action, connectionFrom, withNatsFlags } from './common';
import { ExitCode } from './exit-codes';
import { readJobFile } from './job-file';
import { fetchResult, resultExit } from './result-command';
import { askScheduler, idempotencyHeader, schedulerTarget, withSchedulerFlags } from './scheduler-http';
import type { ClusterResult } from '../results/result';
import { waitForNats } from '../core/wait-servers';

export function registerSubmit(program: Command): void {
  withNatsFlags(
    withSchedulerFlags(
      program
        .command('submit')
        .description(
          'submit a job through the scheduler and print its node jobs; --watch follows the clusters until they end and exits with their verdict (docs/exit-codes.md); NATS flags are for --watch only',
        )
        .argument('<job.yaml>', 'the job file (lkp-tests job YAML; several documents and lists expand as lkp expands them)'),
      true,
    )
      .option('--cluster-dir <dir>', "send the job's cluster spec from this directory inline (default: the scheduler's own --cluster-dir)")
      .option('--watch', "follow the clusters' events until they end (with their retries); exit with the worst verdict's code")
      .option('--json', "print the scheduler's answer as JSON"),
  ).action(
    action(async (file: string, opts: Record<string, unknown>) => {
      const t = schedulerTarget(opts, true);
      const job = readJobFile(file);
      const dir = opts.clusterDir as string | undefined;
      const clusterSpec = dir === undefined ? undefined : localSpecFor(job, file, dir);
      const [body, type] = clusterSpec === undefined ? [job, 'application/yaml'] : [JSON.stringify({ job, cluster_spec: clusterSpec }), 'application/json'];
      const res = await askScheduler(t, 'POST', '/jobs', body, type, idempotencyHeader());
      const messages = res.json<SubmitMessage[]>();
      if (res.status !== 200) throw new ClusterSyncError(ErrorCode.Rejected, `scheduler answered ${res.status}: ${messages.at(-1)?.message ?? res.text.slice(0, 200)}`);
      process.stdout.write(opts.json ? `${JSON.stringify(messages, null, 2)}\n` : `${formatSubmitted(messages).join('\n')}\n`);
      for (const w of new Set(messages.map((m) => m.message).filter(Boolean))) process.stderr.write(`warning: ${w}\n`);
      if (!opts.watch) return ExitCode.Ok;

      const clusters = [...new Set(messages.map((m) => m.cluster))];
      const config = connectionFrom(opts);
      await waitForNats(config, { say: (l) => void process.stderr.write(`cluster-sync: ${l}\n`), giveUpMs: t.giveUpMs });
      const nc = await connectNats(config, 'cluster-sync-submit');
      const color = useColor(process.stdout);
      let watched: { finished: string[]; aborted: string[] };
      try {
        watched = await watchClusters(nc, new Subjects(config.subjectPrefix), clusters, {
          onEvent: (ev) => process.stdout.write(`${formatEvent(ev, color)}\n`),
          finalOf: async (cid) => ((await fetchResult(t, cid, false, 0)).attempts[0]?.state === 'ended' ? 'ended' : null),
        });
      } finally {
        await closeNats(nc);
      }
      process.stdout.write(`${watched.finished.length} finished, ${watched.aborted.length} aborted${watched.aborted.length ? `: ${watched.aborted.join(' ')}` : ''}\n`);
      // The verdicts (a cluster with retries is waited for until its last attempt ended).
      const results: ClusterResult[] = [];
      for (const cid of clusters) results.push(await fetchResult(t, cid, true, 1000));
      for (const r of results)
        process.stdout.write(
          `cluster ${r.cluster}: ${r.verdict}${r.end_cause && r.end_cause !== 'finished' ? ` (${r.end_cause})` : ''}${r.attempts.length > 1 ? ` after ${r.attempts.length} attempts` : ''}\n`,
        );
      const codes = results.map(resultExit);
      return codes.find((c) => c !== ExitCode.Ok) ?? ExitCode.Ok;
    }),
  );
}
