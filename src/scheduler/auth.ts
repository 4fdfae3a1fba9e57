import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** True when `header` is `Bearer TOKEN` with the configured token (compared in constant time). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m !== null && timingSafeEqual(digest(m[1] ?? ''), digest(token));
}

/**
 * An `onRequest` hook: refuses a request without the right bearer token
 * with 401 before its body is read, so a refused submit changes nothing.
 */
export function requireBearer(token: string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (bearerMatches(request.headers.authorization, token)) return;
    const why = request.headers.authorization ? 'wrong bearer token' : 'missing "Authorization: Bearer TOKEN" header';
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="cluster-sync"')
      .send([{ job_id: '0', message: `${why} (the scheduler's CS_API_TOKEN)`, job_state: 'submit', error: 'UNAUTHORIZED' }]);
  };
}
