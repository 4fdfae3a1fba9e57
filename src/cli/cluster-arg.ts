import { checkToken } from '../bus/subjects';
import { InvalidInputError } from '../core/errors';
import { action } from './common';
import { schedulerTarget } from './scheduler-http';
import type { SchedulerTarget } from './scheduler-http';

/** A cluster id given on the command line: one subject token, else exit 2 naming it. */
export function checkClusterId(value: string, what = 'cluster'): string {
  try {
    return checkToken(value, 'cluster id');
  } catch {
    throw new InvalidInputError(what, `${JSON.stringify(value)} is not a cluster id`);
  }
}

/**
 * The action of a command that names one cluster and asks the scheduler
 * about it (cancel, rerun): the id checked (exit 2 naming it), the scheduler
 * flags read, then `run` with both.
 */
export function clusterAction(
  needsToken: boolean,
  run: (cluster: string, target: SchedulerTarget, opts: Record<string, unknown>) => Promise<number>,
): (cluster: string, opts: Record<string, unknown>) => Promise<void> {
  return action(async (cluster: string, opts: Record<string, unknown>) => {
    checkClusterId(cluster);
    return run(cluster, schedulerTarget(opts, needsToken), opts);
  });
}
