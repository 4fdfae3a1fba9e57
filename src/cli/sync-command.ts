import type { Command } from 'commander';
import { runSyncCommand } from '../sync/command';
import type { SyncOp } from '../sync/wire';

const HELP: Record<SyncOp, string> = {
  send: 'lava-send: add this node\'s key=value data to message ID (inside a program run by "cluster-sync node")',
  wait: 'lava-wait: block until any node sent ID; its data goes to $CS_SYNC_CACHE as key=value lines',
  'wait-all': 'lava-wait-all: block until every node (of ROLE) sent ID; data as JOB:key=value lines',
  sync: 'lava-sync: send ID, then wait until every node sent it',
};

/** `cluster-sync send|wait|wait-all|sync`: the lava-* commands under the project's own name. */
export function registerSync(program: Command): void {
  for (const op of ['send', 'wait', 'wait-all', 'sync'] as const) {
    program
      .command(`${op} [args...]`)
      .description(`${HELP[op]}; exit 0 done, 2 bad usage, 3 cluster aborted, 4 timed out (--timeout, default the job's cluster_timeout), 5 no agent`)
      .allowUnknownOption()
      .helpOption(false)
      .action(async (args: string[]) => {
        process.exitCode = await runSyncCommand(op, args, process.env, (line) => process.stderr.write(`${line}\n`));
      });
  }
}
