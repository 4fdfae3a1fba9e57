import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { publishBounded } from '../bus/bounded';
import { cancelCluster, MAX_CANCEL_REASON } from '../results/cancel';
import { junitXml } from '../results/junit';
import { listClusters } from '../results/list';
import { readResult } from '../results/result';
import { rerunCluster } from '../results/resubmit';
import { Publisher } from '../bus/publisher';
import { requireBearer } from './auth';
import type { SchedulerDeps } from './deps';
import { fingerprintOf, idempotencyKeyOf, runOnce } from './idempotency';
import { submitAnswer } from './jobs-route';

const Id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_+=,@%.-]+$/, 'letters, digits and _+=,@%.- only');
const Params = z.object({ id: Id });
const ResultQuery = z.strictObject({ format: z.enum(['json', 'junit']).default('json') });
const CancelQuery = z.strictObject({
  by: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[^\s\0]+$/, 'one word, no white space')
    .optional(),
  reason: z.string().max(MAX_CANCEL_REASON).optional(),
});
const ListQuery = z.strictObject({
  since: z.coerce.number().int().nonnegative().optional(),
  state: z.enum(['open', 'ended']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});

/**
 * Operating clusters (DESIGN §10): `GET /clusters` (history with verdicts),
 * `GET /clusters/:id/result` (JSON, or JUnit with `?format=junit`),
 * `DELETE /clusters/:id` (cancel; bearer token) and
 * `POST /clusters/:id/rerun` (bearer token).
 */
export function registerResultRoutes(app: FastifyInstance, deps: SchedulerDeps): void {
  const auth = requireBearer(deps.options.apiToken);
  const publisher = new Publisher(deps.nc, deps.subjects);

  app.get<{ Querystring: z.infer<typeof ListQuery> }>('/clusters', { schema: { querystring: ListQuery } }, async (request) => ({
    clusters: await listClusters(deps.store, { sinceMs: request.query.since, state: request.query.state, limit: request.query.limit }),
  }));

  app.get<{ Params: z.infer<typeof Params>; Querystring: z.infer<typeof ResultQuery> }>('/clusters/:id/result', { schema: { params: Params, querystring: ResultQuery } }, async (request, reply) => {
    const result = await readResult(deps.store, request.params.id);
    if (request.query.format === 'junit') return reply.type('application/xml; charset=utf-8').send(junitXml(result));
    return result;
  });

  app.delete<{ Params: z.infer<typeof Params>; Querystring: z.infer<typeof CancelQuery> }>(
    '/clusters/:id',
    { onRequest: auth, schema: { params: Params, querystring: CancelQuery } },
    async (request) => {
      const cid = request.params.id;
      const who = request.query.by ?? 'api';
      const mark = deps.replication?.mark(deps.store.redis) ?? 0;
      const outcome = await cancelCluster(deps.store, cid, who, request.query.reason);
      // The same path as any abort: the barrier subject every node listens on, then the events. Told at once,
      // replicated or not: the cluster has ended on the primary, and a cancel lost in a failover only ends it later.
      // A repeat (`dup`) tells the barriers again, with no new event.
      publisher.apply(cid, outcome);
      // The operator is answered "cancelled" once a replica holds it (a NotReplicatedError is a 503: send it again;
      // the same `by` sending it again is answered as the first, its barriers told once more).
      await deps.replication?.waitForReplicas(deps.store.redis, mark);
      request.log.warn({ cluster: cid, by: who, reason: request.query.reason }, outcome.dup ? 'cancel sent again; answered as the first' : 'cluster cancelled');
      const reason = outcome.resolutions[0]?.reason ?? '';
      return { cluster: cid, final: 'abort', end_cause: 'cancelled', reason, barriers: outcome.resolutions.map((r) => r.barrier) };
    },
  );

  app.post<{ Params: z.infer<typeof Params> }>('/clusters/:id/rerun', { onRequest: auth, schema: { params: Params } }, async (request) => {
    const key = idempotencyKeyOf(request.headers);
    const mark = deps.replication?.mark(deps.store.redis) ?? 0;
    // As POST /jobs: a repeat with the same Idempotency-Key gets the first answer; answered once the replicas hold it.
    const { answer, repeated } = await runOnce(deps.store.redis, deps.store.keys, `rerun/${request.params.id}`, key, fingerprintOf(request.params.id), async () => {
      const created = await rerunCluster(deps.store, deps.queues, request.params.id, (cid, event) => publishBounded(deps.nc, deps.subjects.event(cid), event, request.log));
      request.log.info({ cluster: created.cluster, rerun_of: request.params.id }, 'cluster re-run');
      return submitAnswer([created]);
    });
    await deps.replication?.waitForReplicas(deps.store.redis, mark);
    if (repeated) request.log.info({ rerun_of: request.params.id, idempotency_key: key }, 're-run repeated; answered as the first');
    return answer;
  });
}
