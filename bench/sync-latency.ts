import os from 'node:os';
import path from 'node:path';
import { MessageClient } from '../src/client/message-client';
import { EventCounter, FoldTracker, closeClusters, createClusters, timedWait } from './clusters';
import type { SimCluster } from './clusters';
import { Environment } from './environment';
import { summarize } from './stats';
import type { Summary } from './stats';
import type { Target } from './target';

/**
 * lava-sync latency beside barrier latency, in the same run, on the same
 * clusters: from the moment the last node sends to the moment every node is
 * released, one sample per node. For a barrier the first N-1 nodes' waits
 * are folded before the last node reports; for lava-sync the first N-1
 * nodes' `sync ID` are folded before the last node's. Both go the same way
 * (NATS request -> bridge -> BullMQ -> one Lua fold -> NATS publish), so the
 * target is lava-sync p50 within 1.5 × barrier p50.
 *
 * LAVA, for comparison: each device polls the coordinator every `poll_delay`
 * seconds until the sync completes (lava_dispatcher/protocols/multinode.py,
 * default 1 s; LAVA's installation docs show `"poll_delay": 3` in
 * lava-coordinator.conf: "the number of seconds each node will wait before
 * polling the coordinator again").
 */

export const LAVA_POLL_DELAY_S = { default: 1, documentedExample: 3 } as const;

export interface SyncLatencyResult {
  nodes: number;
  /** Named syncs (and as many barriers) measured. */
  rounds: number;
  barrier: Summary;
  sync: Summary;
  /** sync p50 / barrier p50. */
  ratio: number;
  lavaPollDelaySeconds: typeof LAVA_POLL_DELAY_S;
}

/** One barrier (the cluster's `start`) and one named sync per cluster, alternating, `rounds` of each. */
export async function syncLatency(env: Environment, opts: { rounds: number; nodes: number }): Promise<SyncLatencyResult> {
  const n = opts.nodes;
  const folds = new FoldTracker(env);
  // Folded `send` message events per cluster and message ID.
  const sends = new EventCounter(env, (ev) => (ev.type === 'message' && ev.op === 'send' ? `${ev.cluster} ${ev.msg}` : undefined));
  folds.start();
  sends.start();
  const barrier: number[] = [];
  const sync: number[] = [];
  let clusters: SimCluster[] = [];
  try {
    clusters = await createClusters(env, opts.rounds, n);
    for (const c of clusters) {
      // A barrier: N-1 nodes waiting (folded), then the last.
      const first = c.nodes.slice(0, -1).map((node) => timedWait(node, 'wait_start'));
      await folds.folded(c.id, 'wait_start', n - 1);
      let t0 = performance.now();
      for (const r of await Promise.all([...first, timedWait(c.nodes[n - 1]!, 'wait_start')])) barrier.push(r.at - t0);

      // A named sync on the same cluster: N-1 nodes in lava-sync (their sends folded), then the last.
      const group = Object.fromEntries(c.nodes.map((node, i) => [node.id.job, i === 0 ? 'server' : 'client']));
      const msgs = c.nodes.map((node) => new MessageClient(node, group));
      await Promise.all(msgs.map((m) => m.start()));
      const timed = (m: MessageClient): Promise<number> => m.sync('ready', {}, { timeoutMs: 60_000 }).then(() => performance.now());
      const early = msgs.slice(0, -1).map(timed);
      await sends.reached(`${c.id} ready`, n - 1, `${n - 1} sends of ready in ${c.id}`);
      t0 = performance.now();
      for (const at of await Promise.all([...early, timed(msgs[n - 1]!)])) sync.push(at - t0);
      await Promise.all(msgs.map((m) => m.close()));
    }
  } finally {
    await closeClusters(clusters);
    await folds.stop();
    await sends.stop();
  }
  const b = summarize(barrier);
  const s = summarize(sync);
  return { nodes: n, rounds: opts.rounds, barrier: b, sync: s, ratio: s.p50 / b.p50, lavaPollDelaySeconds: LAVA_POLL_DELAY_S };
}

const f = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : String(v));

export function syncTargets(r: SyncLatencyResult): Target[] {
  return [
    {
      what: `lava-sync p50 across ${r.nodes} nodes against the barrier p50 (same run)`,
      target: '≤ 1.5 × barrier',
      measured: `${f(r.ratio)} × (${f(r.sync.p50)} ms / ${f(r.barrier.p50)} ms)`,
      met: r.ratio <= 1.5,
    },
  ];
}

export function formatSyncLatency(r: SyncLatencyResult): string {
  const row = (what: string, s: Summary): string => `  ${what.padEnd(34)}${f(s.p50).padStart(8)}${f(s.p99).padStart(9)}${f(s.max).padStart(9)}${String(s.n).padStart(9)}`;
  return [
    `named sync: last send -> every node released, ${r.nodes} nodes, ${r.rounds} of each, alternating on the same clusters`,
    `  ${''.padEnd(34)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(9)}${'max ms'.padStart(9)}${'samples'.padStart(9)}`,
    row(`barrier (wait_start)`, r.barrier),
    row(`lava-sync ID`, r.sync),
    `  ratio p50 lava-sync / barrier = ${f(r.ratio)}; LAVA polls its coordinator every ${r.lavaPollDelaySeconds.default}–${r.lavaPollDelaySeconds.documentedExample} s (poll_delay)`,
  ].join('\n');
}

/** `node dist/bench/sync-latency.js [ROUNDS] [NODES]`: this phase alone (own Redis, NATS and one worker process). */
async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 200);
  const nodes = Number(process.argv[3] ?? 8);
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(nodes) || nodes < 2) throw new Error('usage: sync-latency.js [ROUNDS >= 1] [NODES >= 2]');
  const env = await Environment.start({ nodeConnections: 8, workerNodeArgs: [], workerArgs: [], workerCwd: path.join(os.tmpdir(), 'cs-bench-sync') });
  try {
    await env.setWorkers(1);
    const r = await syncLatency(env, { rounds, nodes });
    process.stdout.write(`${formatSyncLatency(r)}\n`);
    for (const t of syncTargets(r)) process.stdout.write(`  target: ${t.what}: ${t.target}; measured ${t.measured} — ${t.met ? 'met' : 'MISSED'}\n`);
  } finally {
    await env.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`sync-latency: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
