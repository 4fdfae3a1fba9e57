import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { connectNats } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import { ClusterStore } from '../../src/cluster/store';
import type { ConnectionConfig } from '../../src/core/config';
import { registerOpsRoutes } from '../../src/ops/routes';
import { QueueSet } from '../../src/queue/queues';
import type { WorkerEvents } from '../../workers/events';
import type { Resources } from '../helpers/servers';

/**
 * A small fastify app with only the ops routes, on a free loopback port:
 * what the scheduler serves, without the scheduler.
 */
export async function startOpsApp(res: Resources, config: ConnectionConfig, extra: { workerEvents?: WorkerEvents; registry?: Registry } = {}): Promise<{ app: FastifyInstance; url: string }> {
  const redis = res.redis(config);
  const store = new ClusterStore(redis, { keyPrefix: config.keyPrefix });
  const queues = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  const nc = res.add(await connectNats(config, 'ops-test'), (n) => n.close());
  const app = Fastify({ logger: false });
  registerOpsRoutes(app, { store, nc, subjects: new Subjects(config.subjectPrefix), queues, ...extra });
  res.add(app, (a) => a.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url };
}
