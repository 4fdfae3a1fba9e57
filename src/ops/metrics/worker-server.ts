import { Registry, collectDefaultMetrics } from 'prom-client';
import type { WorkerEvents } from '../../core/worker-events';
import { serveMetrics } from './serve';
import type { MetricsServer } from './serve';
import { attachWorkerMetrics } from './worker-metrics';
import { attachAdmissionMetrics } from './admission-metrics';

/**
 * `cluster-sync worker --metrics-port P`: this worker's counters (and the
 * Node process metrics) on `http://HOST:P/metrics`. Without a port, nothing
 * is served. Prints the address on stderr.
 */
export async function startWorkerMetrics(events: WorkerEvents, port: number | undefined, host = '127.0.0.1'): Promise<MetricsServer | undefined> {
  if (port === undefined) return undefined;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = attachWorkerMetrics(events, registry);
  const detachAdmission = attachAdmissionMetrics(events, registry);
  const server = await serveMetrics(registry, { port, host });
  process.stderr.write(`cluster-sync worker: metrics on ${server.url}\n`);
  return {
    url: server.url,
    async close() {
      metrics.detach();
      detachAdmission();
      await server.close();
    },
  };
}
