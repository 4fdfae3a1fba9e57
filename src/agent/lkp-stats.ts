import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { LifeResult } from './outcome';

/**
 * The lines lkp-tests itself appends to `$RESULT_ROOT/last_state` for how a
 * node's life ended (fengguang/lkp-tests lib/job.sh): `wait_cluster_state`
 * writes `cluster.abort: 1` when a barrier answers abort, and also
 * `cluster.timeout: 1` when it gave up waiting; `check_exit_code` writes
 * `<type>.<program>.exit_code.<code>: 1` and `exit_fail: 1` for a program
 * that failed. Nothing for a life that passed.
 */
export function lkpStatLines(result: LifeResult): string[] {
  switch (result.outcome) {
    case 'aborted':
      return ['cluster.abort: 1'];
    case 'timed_out':
      return ['cluster.abort: 1', 'cluster.timeout: 1'];
    case 'test_failed':
    case 'setup_error': {
      const failed = (result.programs ?? []).find((p) => p.result === 'failed' || p.result === 'not_started');
      if (!failed) return ['exit_fail: 1'];
      return [`${failed.kind === 'daemon' ? 'daemon' : 'test'}.${failed.name}.exit_code.${failed.exit ?? 1}: 1`, 'exit_fail: 1'];
    }
    default:
      return [];
  }
}

/** Appends the lkp stats of a life to `DIR/last_state` (`--result-root DIR`), creating DIR. */
export function appendLkpStats(dir: string, result: LifeResult): void {
  const lines = lkpStatLines(result);
  if (lines.length === 0) return;
  mkdirSync(dir, { recursive: true });
  appendFileSync(path.join(dir, 'last_state'), `${lines.join('\n')}\n`);
}
