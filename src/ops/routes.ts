import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { NatsConnection } from 'nats';
import { Registry } from 'prom-client';
import type { Subjects } from '../bus/subjects';
import type { ClusterStore } from '../cluster/store';
import { NotFoundError } from '../core/errors';
import { idProblem } from '../core/ids';
import type { QueueSet } from '../queue/queues';
import type { WorkerEvents } from '../core/worker-events';
import { clusterEvents, recentClusterSummaries, summarize } from './cluster-summary';
import { registerOpsGauges } from './metrics/ops-metrics';
import { attachWorkerMetrics } from './metrics/worker-metrics';
import { SseStreams } from './sse';
import { readResult } from '../results/result';
import { machinesView } from './machines-view';

export interface OpsDeps {
  store: ClusterStore;
  nc: NatsConnection;
  subjects: Subjects;
  queues: QueueSet;
  /** Registry that `GET /metrics` serves; the ops gauges are added to it. Default: a new one. */
  registry?: Registry;
  /** When workers run in this same process, their counters are served too. Default: none. */
  workerEvents?: WorkerEvents;
}

/** The web page's files (copied into dist by scripts/copy-assets.js). */
const STATIC_DIR = path.join(__dirname, '../ui/static');
const STATIC: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'timeline.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/** Why `id` is no cluster id (the one identifier rule), or undefined when it is one. */
function clusterIdProblem(id: string): string | undefined {
  const problem = idProblem(id, 'cluster id');
  return problem === undefined ? undefined : `cluster: ${problem}`;
}

/**
 * Read-only operator routes, registered on the scheduler's fastify app:
 *   GET /ui                   the web page (cluster list, one cluster's timeline)
 *   GET /ops/clusters         open and recently active clusters (JSON)
 *   GET /ops/clusters/:id     one cluster: state, summary and event history (JSON)
 *   GET /ops/machines         machines per testbox and their state; clusters waiting for admission and what each waits for (JSON)
 *   GET /ops/events           Server-Sent Events fed from NATS (?cluster=ID for one)
 *   GET /metrics              Prometheus text: open clusters, queue depths (+ worker counters if in-process)
 */
export function registerOpsRoutes(app: FastifyInstance, deps: OpsDeps): void {
  const { store, nc, subjects, queues } = deps;
  const registry = registerOpsGauges(store, queues, deps.registry ?? new Registry());
  const workerMetrics = deps.workerEvents ? attachWorkerMetrics(deps.workerEvents, registry) : undefined;
  const streams = new SseStreams();
  app.addHook('onClose', async () => {
    streams.closeAll();
    workerMetrics?.detach();
  });
  // Event streams never end on their own: end them before the server waits for its connections.
  app.addHook('preClose', async () => streams.closeAll());

  const sendStatic = async (name: string, reply: FastifyReply) => {
    const type = STATIC[name];
    if (!type) return reply.code(404).type('text/plain').send(`not found: /ui/${name}\n`);
    return reply
      .type(type)
      .header('cache-control', 'no-cache')
      .send(await readFile(path.join(STATIC_DIR, name)));
  };
  app.get('/ui', async (_req, reply) => sendStatic('index.html', reply));
  app.get<{ Params: { file: string } }>('/ui/:file', async (req, reply) => sendStatic(req.params.file === '' ? 'index.html' : req.params.file, reply));

  app.get('/ops/clusters', async () => ({ clusters: await recentClusterSummaries(store), now: Date.now() }));
  app.get<{ Params: { id: string } }>('/ops/clusters/:id', async (req, reply) => {
    const id = req.params.id;
    const problem = clusterIdProblem(id);
    if (problem) return reply.code(400).send({ error: problem });
    try {
      const view = await store.readCluster(id);
      // The verdict and the attempts (src/results): what an operator asks first.
      const result = await readResult(store, id);
      return {
        cluster: view,
        summary: summarize(view),
        events: await clusterEvents(store, id),
        now: Date.now(),
        result: { state: result.state, verdict: result.verdict, end_cause: result.end_cause, attempts: result.attempts },
      };
    } catch (err) {
      if (err instanceof NotFoundError) return reply.code(404).send({ error: err.message });
      throw err;
    }
  });
  app.get('/ops/machines', async () => machinesView(store));
  app.get<{ Querystring: { cluster?: string } }>('/ops/events', async (req, reply) => {
    const raw = req.query.cluster;
    const cluster = raw === undefined || raw === '' ? undefined : raw;
    const problem = cluster === undefined ? undefined : clusterIdProblem(cluster);
    if (problem) return reply.code(400).send({ error: problem });
    await streams.serve(req, reply, { redis: store.redis, nc, keys: store.keys, subjects, cluster });
    return reply;
  });
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
