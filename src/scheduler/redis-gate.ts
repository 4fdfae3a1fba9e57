import type { FastifyReply, FastifyRequest } from 'fastify';
import { LEGACY_PATH } from './legacy-query';
import type { SchedulerDeps } from './deps';

/**
 * An `onRequest` hook: while the scheduler's Redis connection is not ready
 * (Redis down or restarting), every request but the static UI is answered
 * 503 at once, naming the server, instead of waiting in ioredis' offline
 * queue for ever. The client (lkp's wget, `cluster-sync submit`) asks again.
 */
export function redisGate(deps: SchedulerDeps) {
  const where = deps.redisWhere ? ` at ${deps.redisWhere}` : '';
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (deps.store.redis.status === 'ready' || request.url.startsWith('/ui')) return;
    const message = `Redis${where} is not reachable (connection ${deps.store.redis.status}); nothing was done, try again`;
    reply.code(503).header('retry-after', '2');
    const path = request.url.split('?')[0] ?? '';
    if (path.endsWith(LEGACY_PATH)) await reply.type('text/plain; charset=utf-8').send(`${message}\n`);
    else if (path === '/jobs') await reply.send([{ job_id: '0', message, job_state: 'submit', error: 'UNAVAILABLE' }]);
    else await reply.send({ error: 'UNAVAILABLE', message });
  };
}
