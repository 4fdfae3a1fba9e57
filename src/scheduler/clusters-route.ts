import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { idSchema } from '../bus/messages';
import type { ClusterView } from '../cluster/view';
import type { SchedulerDeps } from './deps';

const ParamsSchema = z.object({ id: idSchema('cluster id') });

/** What `GET /clusters/:id` answers. */
export interface ClusterAnswer {
  id: string;
  spec: string;
  created: number;
  /** The last resolution (`start`, `ready`, `finish`, `abort`), `""` before the first. */
  entire_state: string;
  /** `finish` or `abort` once the cluster is over, else null. */
  final: string | null;
  /** The barrier the nodes are heading for and when it times out (ms since the epoch), null once over. */
  pending: { barrier: string; deadline: number | null } | null;
  nodes: { job: string; roles: string; ip: string; state: string; direct_ips: string; direct_macs: string }[];
  barriers: ClusterView['barriers'];
}

export function clusterAnswer(view: ClusterView): ClusterAnswer {
  const pending = view.pending ? view.barriers.find((b) => b.barrier === view.pending) : undefined;
  return {
    id: view.id,
    spec: view.spec,
    created: view.created,
    entire_state: view.nodes[0]?.entire_state ?? '',
    final: view.final ?? null,
    pending: view.pending ? { barrier: view.pending, deadline: pending?.deadline ?? null } : null,
    nodes: view.nodes.map((n) => ({ job: n.job, roles: n.roles, ip: n.ip, state: n.state, direct_ips: n.direct_ips, direct_macs: n.direct_macs })),
    barriers: view.barriers,
  };
}

/** `GET /clusters/:id`: a cluster's nodes, their states, and its pending barrier with its deadline. */
export function registerClusterRoutes(app: FastifyInstance, deps: SchedulerDeps): void {
  app.get<{ Params: z.infer<typeof ParamsSchema> }>('/clusters/:id', { schema: { params: ParamsSchema } }, async (request) => clusterAnswer(await deps.store.readCluster(request.params.id)));
}
