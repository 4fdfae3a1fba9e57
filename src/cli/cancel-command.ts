import os from 'node:os';
import type { Command } from 'commander';
import { clusterAction } from './cluster-arg';
import { ExitCode } from './exit-codes';
import { askScheduler, withSchedulerFlags } from './scheduler-http';

/** Who cancels: `--by`, else the user and host this runs as. */
function operator(by: unknown): string {
  if (typeof by === 'string' && by !== '') return by;
  let user = process.env.USER ?? 'operator';
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry: keep $USER */
  }
  return `${user}@${os.hostname()}`.replace(/\s/g, '_');
}

export function registerCancel(program: Command): void {
  withSchedulerFlags(
    program
      .command('cancel')
      .description('cancel a cluster: it ends abort with "cancelled by WHO: REASON", every node hears it at once; exit 10 if it had ended')
      .argument('<cluster>', 'the cluster id')
      .option('--reason <text>', 'why, shown to every node and in the result')
      .option('--by <who>', 'who cancels (default: USER@HOST)'),
    true,
  ).action(
    clusterAction(true, async (cluster, t, opts) => {
      const q = new URLSearchParams({ by: operator(opts.by) });
      if (typeof opts.reason === 'string') q.set('reason', opts.reason);
      const res = await askScheduler(t, 'DELETE', `/clusters/${encodeURIComponent(cluster)}?${q.toString()}`);
      if (res.status === 409) {
        process.stderr.write(`cluster-sync: ${res.json<{ message: string }>().message}; nothing changed\n`);
        return ExitCode.Conflict;
      }
      const body = res.json<{ reason: string }>();
      process.stdout.write(`cluster ${cluster} cancelled: ${body.reason}\n`);
      return ExitCode.Ok;
    }),
  );
}
