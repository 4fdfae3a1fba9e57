import type { Command } from 'commander';
import { connectNats } from '../bus/connect';
import { Subjects } from '../bus/subjects';
import { InvalidInputError } from '../core/errors';
import { formatEvent, useColor } from '../ops/event-line';
import { formatSubmitted, localSpecFor, submitJob } from '../scheduler/submit-client';
import { watchClusters } from '../scheduler/watch-clusters';
import { Exit, action, connectionFrom, withConnectionFlags } from './common';
import { readJobFile } from './job-file';

export function registerSubmit(program: Command): void {
  withConnectionFlags(program.command('submit').description('submit a job through the scheduler and print its node jobs; --watch follows the clusters until they end'))
    .argument('<job.yaml>', 'the job file (lkp-tests job YAML; several documents and lists expand as lkp expands them)')
    .option('--server <url>', 'scheduler URL (env CS_SCHEDULER_URL)', process.env.CS_SCHEDULER_URL ?? 'http://127.0.0.1:3000')
    .option('--token <token>', 'the scheduler\'s bearer token (env CS_API_TOKEN)')
    .option('--cluster-dir <dir>', 'send the job\'s cluster spec from this directory inline (default: the scheduler\'s own --cluster-dir)')
    .option('--watch', 'follow the clusters\' events until they end; exit 0 only if every one finished')
    .option('--json', 'print the scheduler\'s answer as JSON')
    .action(
      action(async (file: string, opts: Record<string, unknown>) => {
        const token = (opts.token as string | undefined) ?? process.env.CS_API_TOKEN;
        if (!token) throw new InvalidInputError('--token', 'is required (or env CS_API_TOKEN)');
        const job = readJobFile(file);
        const dir = opts.clusterDir as string | undefined;
        const clusterSpec = dir === undefined ? undefined : localSpecFor(job, file, dir);
        const messages = await submitJob({ server: opts.server as string, token, job, clusterSpec });
        process.stdout.write(opts.json ? `${JSON.stringify(messages, null, 2)}\n` : `${formatSubmitted(messages).join('\n')}\n`);
        for (const w of new Set(messages.map((m) => m.message).filter(Boolean))) process.stderr.write(`warning: ${w}\n`);
        if (!opts.watch) return Exit.Ok;

        const clusters = [...new Set(messages.map((m) => m.cluster))];
        const config = connectionFrom(opts);
        const nc = await connectNats(config, 'cluster-sync-submit');
        const color = useColor(process.stdout);
        try {
          const result = await watchClusters(nc, new Subjects(config.subjectPrefix), clusters, {
            onEvent: (ev) => process.stdout.write(`${formatEvent(ev, color)}\n`),
            finalOf: async (cid) => {
              const res = await fetch(new URL(`/clusters/${encodeURIComponent(cid)}`, opts.server as string));
              const body = (await res.json()) as { final?: string | null };
              return res.ok ? (body.final ?? null) : null;
            },
          });
          process.stdout.write(`${result.finished.length} finished, ${result.aborted.length} aborted${result.aborted.length ? `: ${result.aborted.join(' ')}` : ''}\n`);
          return result.aborted.length === 0 ? Exit.Ok : Exit.Failed;
        } finally {
          await nc.drain().catch(() => undefined);
        }
      }),
    );
}
