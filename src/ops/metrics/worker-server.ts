import { Registry, collectDefaultMetrics } from 'prom-client';
import { InvalidInputError } from '../../core/errors';
import type { WorkerEvents } from '../../../workers/events';
import { serveMetrics } from './serve';
import type { MetricsServer } from './serve';
import { attachWorkerMetrics } from './worker-metrics';
import { attachAdmissionMetrics } from './admission-metrics';

/** Checks `--metrics-port` before anything starts. */
export function parseMetricsPort(port: string | undefined): number | undefined {
  if (port === undefined) return undefined;
  const n = Number(port);
  if (!/^\d+$/.test(port) || n > 65535) throw new InvalidInputError('--metrics-port', `expected a TCP port 0-65535, got ${JSON.stringify(port)}`);
  return n;
}

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
