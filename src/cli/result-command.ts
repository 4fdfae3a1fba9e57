import type { Command } from 'commander';
import { InvalidInputError } from '../core/errors';
import { parseDuration } from '../core/duration';
import { renderResult } from '../results/render';
import type { ClusterResult } from '../results/result';
import { action } from './common';
import { ExitCode, VERDICT_EXIT } from './exit-codes';
import { askScheduler, schedulerTarget, withSchedulerFlags } from './scheduler-http';
import type { SchedulerTarget } from './scheduler-http';
import { checkClusterId } from './cluster-arg';

/** The exit code a result stands for: its verdict's once it has ended, else "not ended". */
export function resultExit(r: Pick<ClusterResult, 'state' | 'verdict'>): ExitCode {
  return r.state === 'ended' && r.verdict ? (VERDICT_EXIT[r.verdict] ?? ExitCode.Failed) : ExitCode.NotEnded;
}

/** Reads a result; with `wait`, asks again every `pollMs` until the cluster (with its retries) has ended. */
export async function fetchResult(t: SchedulerTarget, cid: string, wait: boolean, pollMs: number): Promise<ClusterResult> {
  for (;;) {
    const r = (await askScheduler(t, 'GET', `/clusters/${encodeURIComponent(cid)}/result`)).json<ClusterResult>();
    if (!wait || r.state === 'ended') return r;
    await new Promise((res) => setTimeout(res, pollMs));
  }
}

export function registerResult(program: Command): void {
  withSchedulerFlags(
    program
      .command('result')
      .description("a cluster's result: verdict, every node's programs (exit, duration), barriers and syncs, attempts; exits with the verdict's code (docs/exit-codes.md)")
      .argument('<cluster>', 'a cluster id (any attempt of it)')
      .option('--json', 'print the result as JSON')
      .option('--junit', 'print the result as JUnit XML (one suite, a test case per node program, barrier and sync)')
      .option('--wait', 'wait until the cluster (and its retries) has ended')
      .option('--poll <duration>', 'with --wait: how often to ask the scheduler', '2s'),
    false,
  ).action(
    action(async (cluster: string, opts: Record<string, unknown>) => {
      checkClusterId(cluster);
      if (opts.json && opts.junit) throw new InvalidInputError('command line', 'give --json or --junit, not both', '--junit');
      const t = schedulerTarget(opts, false);
      const pollMs = parseDuration(opts.poll, '--poll', 'command line');
      if (!opts.junit) {
        const r = await fetchResult(t, cluster, Boolean(opts.wait), pollMs);
        process.stdout.write(`${opts.json ? JSON.stringify(r, null, 2) : renderResult(r)}\n`);
        return resultExit(r);
      }
      const r = await fetchResult(t, cluster, Boolean(opts.wait), pollMs);
      const xml = await askScheduler(t, 'GET', `/clusters/${encodeURIComponent(cluster)}/result?format=junit`);
      process.stdout.write(xml.text);
      return resultExit(r);
    }),
  );
}
