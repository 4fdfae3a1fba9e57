import type { Command } from 'commander';
import { startWorkers } from '../../workers';
import { startWorkerMetrics } from '../ops/metrics/worker-server';
import { parseDuration } from '../core/duration';
import { createLogger } from '../core/logger';
import { installProcessGuards } from '../core/process-guards';
import { waitForNats, waitForRedis } from '../core/wait-servers';
import { action, connectionFrom, startupSignal, untilSignal, waitForever, withConnectionFlags } from './common';
import { PORT, intFlag } from './numbers';

export function registerWorker(program: Command): void {
  withConnectionFlags(program.command('worker').description('run the workers: report bridge, fold, dispatcher of node jobs to node agents, deadlines, dead-node sweep, retries and retention'))
    .option('--concurrency <n>', 'batches of reports folded at once', intFlag('--concurrency', { min: 1 }), 8)
    .option(
      '--lock-ms <ms>',
      "a dead worker's batches of reports are taken over by another after about twice this (also the lock of node jobs it hands out)",
      intFlag('--lock-ms', { min: 100 }),
      30_000,
    )
    .option('--retention <duration>', 'how long an ended cluster is kept before it is deleted whole (e.g. 7d, 12h, 30s)', '7d')
    .option('--submit-grace <duration>', 'how long a half-submitted cluster may wait before it is finished or removed', '60s')
    .option('--end-grace <duration>', "after a cluster ended, how long its nodes have to report their node job's end before the dispatcher fails the job itself", '60s')
    .option('--retry-backoff <duration>', "wait before a cluster's first automatic retry (job field cluster_retries), doubled for each later one", '10s')
    .option('--admit-timeout <duration>', "a cluster not admitted (all its machines at once) within this long ends not_admitted; a job's admit_timeout: overrides it", '1h')
    .option('--reserve-after <duration>', 'a cluster waiting longer than this reserves idle machines of its testboxes (only while every testbox it needs has a live machine)', '10m')
    .option('--metrics-port <port>', "serve this process's Prometheus metrics on GET /metrics at this port (0: any free port)", intFlag('--metrics-port', PORT))
    .option('--metrics-host <host>', 'address the metrics server listens on', '127.0.0.1')
    .action(
      action(async (opts: Record<string, unknown>) => {
        const config = connectionFrom(opts);
        const log = createLogger('cluster-sync-worker');
        installProcessGuards('worker', log);
        const retentionMs = parseDuration(opts.retention, '--retention', 'command line');
        const submitGraceMs = parseDuration(opts.submitGrace, '--submit-grace', 'command line');
        const endGraceMs = parseDuration(opts.endGrace, '--end-grace', 'command line');
        const admission = { admitTimeoutMs: parseDuration(opts.admitTimeout, '--admit-timeout', 'command line'), reserveAfterMs: parseDuration(opts.reserveAfter, '--reserve-after', 'command line') };
        const retryBackoffMs = parseDuration(opts.retryBackoff, '--retry-backoff', 'command line');
        // Servers that are not up yet are waited for (saying so once per interval); SIGTERM stops the wait.
        const startup = startupSignal('cluster-sync worker');
        await waitForNats(config, waitForever('cluster-sync worker', startup.signal));
        await waitForRedis(config, waitForever('cluster-sync worker', startup.signal));
        startup.release();
        // Listen before the start, so a signal that arrives while it starts (or right after its ready line) stops it gracefully.
        const stopped = untilSignal('cluster-sync worker');
        const handle = await startWorkers(config, {
          concurrency: opts.concurrency as number,
          lockDurationMs: opts.lockMs as number,
          dispatcher: { lockMs: opts.lockMs as number, endGraceMs },
          logger: log,
          retentionMs,
          submitGraceMs,
          retryBackoffMs,
          admission,
        });
        const metrics = await startWorkerMetrics(handle.events, opts.metricsPort as number | undefined, opts.metricsHost as string).catch(async (err: unknown) => {
          await handle.close();
          throw err;
        });
        const sig = await stopped;
        process.stderr.write(`cluster-sync worker: ${sig}, stopping\n`);
        await metrics?.close();
        await handle.close();
        process.stderr.write('cluster-sync worker: stopped\n');
        // A connection that is still retrying (Redis gone) must not keep a stopped worker alive.
        setTimeout(() => process.exit(), 1000).unref();
      }),
    );
}
