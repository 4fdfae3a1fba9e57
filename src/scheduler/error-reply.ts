import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ClusterSyncError, ErrorCode, errorMessage } from '../core/errors';
import { LIMITS } from '../core/safe-yaml';
import { PartialSubmitError } from '../cluster/submit';
import { LEGACY_PATH } from './legacy-query';
import { submitAnswer } from './jobs-route';

/** An HTTP status and a one-line reason for any error a route throws. */
export function describeHttpError(err: unknown): { status: number; code: string; message: string } {
  if (err instanceof ClusterSyncError) {
    const status = err.code === ErrorCode.InvalidInput ? 400 : err.code === ErrorCode.NotFound ? 404 : err.code === ErrorCode.Rejected ? 409 : err.retryable ? 503 : 500;
    return { status, code: err.code, message: oneLine(err.message) };
  }
  const fe = err as Partial<FastifyError>;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, code: 'TOO_LARGE', message: `request body is over ${LIMITS.jobBytes} bytes: a job may be at most 1 MiB` };
  }
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'send the job as application/yaml, text/yaml, text/plain or application/json' };
  }
  if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || fe.code === 'FST_ERR_CTP_EMPTY_BODY') {
    return { status: 400, code: ErrorCode.InvalidInput, message: 'request body: is empty; send a job' };
  }
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 ? fe.statusCode : 500;
  return { status, code: fe.code ?? ErrorCode.Internal, message: oneLine(errorMessage(err)) };
}

function oneLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

/**
 * Answers an error in the shape the route's clients read: Compass-CI's submit
 * answer for `/jobs`, one plain line for the legacy lkp endpoint, and
 * `{error, message}` elsewhere.
 */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, code, message } = describeHttpError(err);
  if (status >= 500) request.log.error({ err }, 'request failed');
  const path = request.url.split('?')[0] ?? '';
  if (path.endsWith(LEGACY_PATH)) return reply.code(status).type('text/plain; charset=utf-8').send(`${message}\n`);
  if (path === '/jobs') {
    // A submit that failed part-way lists the node jobs of the clusters it did create, then the error:
    // the user never has to guess what exists.
    const created = err instanceof PartialSubmitError ? submitAnswer(err.created) : [];
    return reply.code(status).send([...created, { job_id: '0', message, job_state: 'submit', error: code }]);
  }
  return reply.code(status).send({ error: code, message });
}
