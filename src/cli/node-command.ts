import type { Command } from 'commander';
import { closeNats, connectNats } from '../bus/connect';
import { Subjects, checkTestbox } from '../bus/subjects';
import type { NatsConnection } from 'nats';
import { runAgent } from '../agent/agent';
import { AdmissionMode } from '../admission/settings';
import { EXIT_CODES } from '../agent/outcome';
import { Output } from '../agent/output';
import { scriptsRoot } from '../agent/scripts';
import { InvalidInputError, errorMessage } from '../core/errors';
import { parseDuration } from '../core/duration';
import { installProcessGuards } from '../core/process-guards';
import { redactUrl, waitForNats } from '../core/wait-servers';
import { action, connectionFrom, startupSignal, waitForever, withNatsFlags } from './common';
import { intFlag } from './numbers';

interface NodeFlags extends Record<string, unknown> {
  testbox: string;
  scripts: string;
  once?: boolean;
  json?: boolean;
  etcHosts?: boolean;
  hostsFile: string;
  ip?: string;
  pollMs: number;
  takeTimeout?: string;
  resultRoot?: string;
  admission: string;
  machineId?: string;
  lease: string;
}

export function registerNode(program: Command): void {
  withNatsFlags(
    program
      .command('node')
      .description("the node agent: take node jobs of a testbox, run each job's life (daemons, tests, barriers), report how it ended")
      .requiredOption('--testbox <name>', 'the testbox queue to take node jobs from (the cluster spec host name without --N)')
      .requiredOption('--scripts <dir>', 'the scripts tree: daemon/NAME runs as a daemon, tests/NAME as a test (an lkp-tests checkout)')
      .option('--once', 'run one node job, then exit with its exit code')
      .option('--json', 'print one JSON object per line instead of human lines')
      .option('--etc-hosts', 'append "IP ROLE" lines for every role to the hosts file after roles_ip')
      .option('--hosts-file <file>', 'the hosts file --etc-hosts appends to', '/etc/hosts')
      .option('--ip <address>', 'the address this node reports (default: first address of `hostname -I`)')
      .option('--poll-ms <ms>', 'pause between take requests while the queue is empty, ms', intFlag('--poll-ms', { min: 10 }), 1000)
      .option('--result-root <dir>', "append lkp-tests' own stats of each job's end to DIR/last_state (cluster.abort: 1, cluster.timeout: 1, exit_fail: 1), as lkp's wait_cluster_state does")
      .option('--take-timeout <duration>', 'with --once: give up (exit 6) when no job came within this long, e.g. 30s')
      .option(
        '--admission <mode>',
        'how node jobs reach this machine: "admission" (a cluster gets all its machines at once, or waits) or "fifo" (the next node job of the testbox queue, as Compass-CI)',
        'admission',
      )
      .option('--machine-id <id>', "this machine's id for admission (default: host name and testbox)")
      .option('--lease <duration>', "the machine's lease: gone (its reservations released) when it neither asks nor runs for this long", '15s'),
  ).action(
    action(async (opts: NodeFlags) => {
      const config = connectionFrom(opts);
      installProcessGuards('node');
      try {
        checkTestbox(opts.testbox, 'testbox');
      } catch (err) {
        throw new InvalidInputError('--testbox', errorMessage(err));
      }
      if (opts.admission !== AdmissionMode.Admission && opts.admission !== AdmissionMode.Fifo)
        throw new InvalidInputError('--admission', `must be "admission" or "fifo", got ${JSON.stringify(opts.admission)}`);
      if (opts.machineId !== undefined && !/^[A-Za-z0-9_.:@+-]{1,128}$/.test(opts.machineId)) throw new InvalidInputError('--machine-id', 'must be 1 to 128 letters, digits or _ . : @ + -');
      const leaseMs = parseDuration(opts.lease, '--lease', 'command line');
      if (leaseMs < 1000 || leaseMs > 3_600_000) throw new InvalidInputError('--lease', 'must lie between 1s and 1h');
      const root = scriptsRoot(opts.scripts);
      const takeTimeoutMs = opts.takeTimeout === undefined ? undefined : parseDuration(opts.takeTimeout, '--take-timeout', 'command line');
      const output = new Output((line) => process.stdout.write(`${line}\n`), Boolean(opts.json));
      let nc: NatsConnection;
      // NATS not up yet: waited for, said once per interval; the same credentials refused is a setup error.
      const startup = startupSignal('cluster-sync node');
      try {
        await waitForNats(config, waitForever('cluster-sync node', startup.signal));
        nc = await connectNats(config, `cluster-sync-node-${opts.testbox}`);
      } catch (err) {
        // Stopped (SIGTERM) while it waited: not a setup error.
        if (startup.signal.aborted) return EXIT_CODES.aborted;
        process.stderr.write(`cluster-sync node: cannot connect to NATS at ${redactUrl(config.natsUrl)}: ${errorMessage(err)}\n`);
        return EXIT_CODES.setup_error;
      } finally {
        startup.release();
      }
      const stop = new AbortController();
      const onSignal = (sig: NodeJS.Signals): void => {
        output.notice(`${sig}: stopping`);
        stop.abort(new Error(`agent received ${sig}`));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        return await runAgent(nc, new Subjects(config.subjectPrefix), {
          testbox: opts.testbox,
          scriptsRoot: root,
          once: Boolean(opts.once),
          output,
          ip: opts.ip,
          etcHosts: opts.etcHosts ? opts.hostsFile : undefined,
          pollMs: opts.pollMs,
          takeTimeoutMs,
          resultRoot: opts.resultRoot,
          signal: stop.signal,
          admission: opts.admission,
          machineId: opts.machineId,
          leaseMs,
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await closeNats(nc);
      }
    }),
  );
}
