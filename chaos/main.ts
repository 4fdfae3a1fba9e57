import { Command } from 'commander';
import { runCampaign } from './campaign';
import { FAULT_KINDS, HA_FAULT_KINDS } from './plan';
import { summaryTable } from './table';
import type { FaultKind } from './plan';

/**
 * `npm run chaos -- --seed S --rounds N [--minutes M]`: see docs/testing.md, "The
 * chaos campaign". Exits 1 when any invariant was violated.
 */
function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got ${JSON.stringify(v)}`);
    return n;
  };
}

async function main(): Promise<void> {
  const program = new Command('chaos')
    .description('seeded workload and faults against real Redis, NATS, workers and scheduler, checked against the invariants')
    .option('--seed <n>', 'seed of the schedule (the same seed gives the same workload and faults)', int('--seed'), Math.floor(Math.random() * 1e9))
    .option('--rounds <n>', 'rounds to run', int('--rounds'), 10)
    .option('--from-round <r>', 'first round to run: --from-round R --rounds 1 replays round R of the seed alone', int('--from-round'), 0)
    .option('--minutes <m>', 'stop starting rounds after this many minutes', Number)
    .option('--workers <n>', 'worker processes (default: 2 or 3, from the seed)', int('--workers'))
    .option('--max-clusters <n>', 'clusters per round, at most', int('--max-clusters'), 8)
    .option('--max-faults <n>', 'faults per round, at most', int('--max-faults'), 2)
    .option('--max-machine-clusters <n>', 'clusters per round run by machines through admission (agents that come, leave and die), at most; 0: none', int('--max-machine-clusters'), 5)
    .option('--ha', 'run against a 3-server NATS cluster and Redis behind Sentinel (primary, 2 replicas, 3 sentinels), with their faults')
    .option('--faults <kinds>', `fault kinds to draw from, comma-separated (${FAULT_KINDS.join(', ')}; with --ha: ${HA_FAULT_KINDS.join(', ')})`)
    .option('--bound-ms <ms>', 'liveness bound without faults', int('--bound-ms'), 1000)
    .option('--recovery-ms <ms>', 'liveness bound after a fault', int('--recovery-ms'), 20_000)
    .option('--retention-ms <ms>', "the workers' --retention: each ended cluster must be gone this long after it ended", int('--retention-ms'), 8000)
    .option('--log-dir <dir>', "write each worker's and the scheduler's whole output there, one file per process")
    .option('--end-grace-ms <ms>', "the workers' --end-grace: a node job whose node never said done is failed this long after its cluster ended", int('--end-grace-ms'), 3000)
    .parse();
  const o = program.opts<{
    ha?: boolean;
    seed: number;
    rounds: number;
    fromRound: number;
    minutes?: number;
    workers?: number;
    maxClusters: number;
    maxFaults: number;
    maxMachineClusters: number;
    faults?: string;
    boundMs: number;
    recoveryMs: number;
    retentionMs: number;
    endGraceMs: number;
    logDir?: string;
  }>();
  const known: readonly string[] = o.ha ? HA_FAULT_KINDS : FAULT_KINDS;
  const kinds = o.faults === undefined ? known : o.faults.split(',').filter(Boolean);
  for (const k of kinds) if (!known.includes(k)) throw new Error(`--faults: unknown fault kind ${JSON.stringify(k)}${o.ha ? ' with --ha' : ''} (known: ${known.join(', ')})`);
  // SIGINT / SIGTERM: no further round; what ran is checked, the servers and processes are stopped by PID.
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`chaos: ${sig}: finishing the round under way, then checking and stopping everything\n`);
      stop.abort();
    });
  }
  // A rejection nobody handled is a bug of the harness or of what it calls: counted, not fatal (the servers would be left running).
  const harnessErrors: string[] = [];
  process.on('unhandledRejection', (reason) => {
    const text = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    process.stderr.write(`chaos: unhandled promise rejection: ${text}\n`);
    harnessErrors.push(`unhandled promise rejection: ${text}`);
  });
  const result = await runCampaign({ ...o, faultKinds: kinds as FaultKind[], signal: stop.signal, harnessErrors });
  for (const e of harnessErrors) result.violations.push({ round: result.rounds, invariant: 'integrity', message: `the campaign process met an unhandled error: ${e}`, lines: [] });
  process.stdout.write(
    `\n${summaryTable(result)}\n\nreplay: npm run chaos --${o.ha ? ' --ha' : ''} --seed ${result.seed} --rounds ${result.rounds}${o.fromRound ? ` --from-round ${o.fromRound}` : ''}\n`,
  );
  process.exitCode = result.violations.length > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 2;
});
