import { NodeClient } from '../src/client/node-client';
import type { BarrierAnswer } from '../src/client/node-client';
import { prepareClusters } from '../src/cluster/prepare';
import type { PreparedCluster } from '../src/cluster/prepare';
import { submitClusters } from '../src/cluster/submit';
import type { SubmittedCluster } from '../src/cluster/submit';
import { decodeText } from '../src/bus/connect';
import type { Subscription } from 'nats';
import type { ClusterEvent } from '../src/fold/outcome';
import type { Environment } from './environment';
import { inParallel } from './stats';

/** The waits of one cluster's life, in order, with the barrier each ends at. */
export const STEPS = ['wait_start', 'wait_ready', 'finished'] as const;
export type Step = (typeof STEPS)[number];

/** A job of N nodes (one server, N-1 clients) on an inline spec, as `submit` would take it. */
export function benchJob(nodes: number): { job: string; spec: string } {
  const hosts = Array.from({ length: nodes }, (_, i) => `  bench--${i + 1}: { roles: [${i === 0 ? 'server' : 'client'}] }`).join('\n');
  return {
    job: 'suite: bench\ncluster: cs-bench\nif role server:\n  srv:\nif role client:\n  cli:\n',
    spec: `nodes:\n${hosts}\n`,
  };
}

/** One simulated cluster: its id and a started NodeClient per node, each on one of the shared connections. */
export interface SimCluster {
  id: string;
  nodes: NodeClient[];
}

/** Submits `count` clusters of `nodes` nodes as `submit` does (state in Redis, node jobs with their tokens on the testbox queue). */
export async function submitBenchClusters(env: Environment, count: number, nodes: number): Promise<SubmittedCluster[]> {
  const { job, spec } = benchJob(nodes);
  const [prepared] = prepareClusters(job, 'bench job', { inlineSpec: spec });
  const chunks: PreparedCluster[][] = [];
  for (let i = 0; i < count; i += 25) chunks.push(Array.from({ length: Math.min(25, count - i) }, () => prepared as PreparedCluster));
  return (await inParallel(chunks, 8, (c) => submitClusters(env.store, env.queues, c))).flat();
}

/**
 * Creates `count` clusters of `nodes` nodes through prepareClusters and
 * submitClusters (state in Redis, node jobs on the testbox queue), then
 * starts a NodeClient per node (subscribed to the barrier subject).
 */
export async function createClusters(env: Environment, count: number, nodes: number): Promise<SimCluster[]> {
  const submitted = await submitBenchClusters(env, count, nodes);
  const out: SimCluster[] = [];
  for (const s of submitted) {
    const clients = s.jobs.map((j) => new NodeClient(env.nodeConnection(), env.subjects, { cluster: j.cluster, job: j.job_id, token: j.token }, { requestTimeoutMs: 30_000 }));
    out.push({ id: s.cluster, nodes: clients });
  }
  await inParallel(out, 64, (c) => Promise.all(c.nodes.map((n) => n.start())));
  return out;
}

export async function closeClusters(clusters: SimCluster[]): Promise<void> {
  await Promise.all(clusters.flatMap((c) => c.nodes.map((n) => n.close())));
}

/** One node's wait, timed: resolves with the answer and when (performance.now()) it arrived. */
export async function timedWait(node: NodeClient, step: Step): Promise<{ answer: BarrierAnswer; at: number }> {
  const answer = await node.wait(step);
  const at = performance.now();
  if (answer.result === 'abort') throw new Error(`cluster ${node.id.cluster} aborted at ${answer.barrier}: ${answer.reason ?? ''}`);
  return { answer, at };
}

/**
 * Counts the workers' events (`<prefix>.cluster.*.event`) by a key drawn
 * from each (events without one are not counted), so a phase can wait until
 * N events of a key were folded before it goes on.
 */
export class EventCounter {
  private readonly counts = new Map<string, number>();
  private readonly waiters = new Map<string, { need: number; resolve: () => void }[]>();
  private sub: Subscription | undefined;

  constructor(
    private readonly env: Environment,
    private readonly keyOf: (ev: ClusterEvent) => string | undefined,
  ) {}

  start(): void {
    this.sub = this.env.nc.subscribe(this.env.subjects.allEvents, {
      callback: (err, msg) => {
        if (err) return;
        const key = this.keyOf(JSON.parse(decodeText(msg.data)) as ClusterEvent);
        if (key === undefined) return;
        const n = (this.counts.get(key) ?? 0) + 1;
        this.counts.set(key, n);
        const ws = this.waiters.get(key);
        if (!ws) return;
        for (const w of ws.filter((x) => x.need <= n)) w.resolve();
        const left = ws.filter((x) => x.need > n);
        if (left.length > 0) this.waiters.set(key, left);
        else this.waiters.delete(key);
      },
    });
  }

  /** Resolves once `need` events of `key` were counted; fails after `timeoutMs`, naming `what`. */
  async reached(key: string, need: number, what: string, timeoutMs = 60_000): Promise<void> {
    if ((this.counts.get(key) ?? 0) >= need) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} not folded within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiters.get(key) ?? [];
      list.push({
        need,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      this.waiters.set(key, list);
    });
  }

  async stop(): Promise<void> {
    await this.sub?.drain().catch(() => undefined);
    this.counts.clear();
  }
}

/**
 * Counts folded reports per cluster and kind, so a phase can wait until the
 * first N-1 reports of a barrier are folded before it sends the last one.
 */
export class FoldTracker extends EventCounter {
  constructor(env: Environment) {
    super(env, (ev) => (ev.type === 'report' ? `${ev.cluster} ${ev.report}` : undefined));
  }

  /** Resolves once `need` reports of `kind` of `cluster` were folded; fails after `timeoutMs`. */
  folded(cluster: string, kind: Step, need: number, timeoutMs = 60_000): Promise<void> {
    return this.reached(`${cluster} ${kind}`, need, `${need} ${kind} reports of ${cluster}`, timeoutMs);
  }
}
