import { Command } from 'commander';
import { registerServices } from './services-command';
import { registerDemo } from './demo-command';
import { registerNode } from './node-command';
import { registerSplit } from './split-command';
import { registerStatus } from './status-command';
import { registerWatch } from './watch-command';
import { registerWorker } from './worker-command';
import { registerScheduler } from './scheduler-command';
import { registerSubmit } from './submit-command';
import { registerNatsConfig } from './nats-config-command';
import { registerSync } from './sync-command';
import { reportError } from './common';

export function buildProgram(): Command {
  const program = new Command('cluster-sync')
    .description('event-driven multi-device test synchronisation for Compass-CI / lkp-tests')
    .version('0.1.0')
    .showHelpAfterError();
  registerSplit(program);
  registerWorker(program);
  registerServices(program);
  registerNode(program);
  registerDemo(program);
  registerWatch(program);
  registerStatus(program);
  registerScheduler(program);
  registerSubmit(program);
  registerNatsConfig(program);
  registerSync(program);
  return program;
}

if (require.main === module || process.argv[1]?.endsWith('cluster-sync')) {
  buildProgram()
    .parseAsync(process.argv)
    // A flag's value refused by its parser (./numbers) ends up here: exit 2, as bad input in an action.
    .catch(reportError);
}
