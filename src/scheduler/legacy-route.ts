import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ReportInfo } from '../bus/messages';
import type { NodeIdentity } from '../client/node-client';
import { checkNodeInfo } from '../cluster/node-info';
import { rolesIpLines } from '../cluster/view';
import type { NodeEntry } from '../cluster/view';
import { InvalidInputError, NotFoundError } from '../core/errors';
import type { SchedulerDeps } from './deps';
import { AddressList } from './address-list';
import { LEGACY_ROUTES, LegacyQuerySchema } from './legacy-query';
import type { LegacyQuery } from './legacy-query';
import { reportAndSeeFold, waitAtBarrier } from './node-proxy';

/**
 * `GET /~lkp/cgi-bin/lkp-cluster-sync` (and under `/scheduler`), answering
 * exactly what lkp-tests' `lib/job.sh` reads after `tail -n +2`:
 * - `wait_start|wait_ready|wait_finish|finished`: one word, `start`, `ready`,
 *   `finish` or `abort`, when the barrier resolves; `retry` at the long-poll limit;
 * - `roles_ip`: `direct_ROLE_ips=IPS` and `ROLE=IP` lines;
 * - `write_state|failed|abort` (or no state): the cluster's state JSON, as
 *   stored in `sched/cluster_state`.
 * Bodies carry no trailing newline, as Compass-CI sent them.
 */
export function registerLegacyRoutes(app: FastifyInstance, deps: SchedulerDeps): void {
  const allowed = deps.options.legacyAllow && new AddressList(deps.options.legacyAllow);
  // Before the query is even read: a refused address changes nothing.
  const onRequest = allowed
    ? async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
        if (allowed.has(request.ip)) return undefined;
        request.log.warn({ ip: request.ip, from: request.socket.remoteAddress }, 'legacy request from an address outside --legacy-allow refused');
        return text(reply.code(403), `address ${request.ip} may not use the legacy endpoint (scheduler --legacy-allow)\n`);
      }
    : undefined;
  for (const url of LEGACY_ROUTES) {
    app.get<{ Querystring: LegacyQuery }>(url, { schema: { querystring: LegacyQuerySchema }, ...(onRequest ? { onRequest } : {}) }, (request, reply) => answer(deps, request, reply));
  }
}

/** An AbortSignal that fires when the HTTP client goes away before the answer. */
function clientGone(reply: FastifyReply): { signal: AbortSignal; release: () => void } {
  const ctl = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableEnded) ctl.abort();
  };
  reply.raw.on('close', onClose);
  return { signal: ctl.signal, release: () => reply.raw.off('close', onClose) };
}

function text(reply: FastifyReply, body: string): FastifyReply {
  return reply.type('text/plain; charset=utf-8').send(body);
}

async function answer(deps: SchedulerDeps, request: FastifyRequest<{ Querystring: LegacyQuery }>, reply: FastifyReply): Promise<FastifyReply> {
  const q = request.query;
  const { store } = deps;
  const cluster = await store.clusterOfJob(q.job_id);
  if (!cluster) throw new NotFoundError(`unknown job id ${q.job_id}`);
  const token = await store.token(cluster);
  if (!token) throw new NotFoundError(`cluster ${cluster} of job ${q.job_id} no longer exists`);
  const id: NodeIdentity = { cluster, job: q.job_id, token };
  const ctx = { nc: deps.nc, subjects: deps.subjects };
  const gone = clientGone(reply);
  try {
    switch (q.state) {
      case 'wait_start':
      case 'wait_ready':
      case 'wait_finish':
      case 'finished': {
        const outcome = await waitAtBarrier(ctx, id, q.state, deps.options.longPollMs, gone.signal);
        if (outcome === 'gone') {
          request.log.info({ job: q.job_id, state: q.state }, 'lkp client went away during a long poll');
          reply.hijack();
          reply.raw.destroy();
          return reply;
        }
        return text(reply, outcome);
      }
      case 'roles_ip': {
        const view = await store.readCluster(cluster);
        return text(reply, rolesIpLines(view.nodes).join('\n'));
      }
      case 'write_state': {
        const info: ReportInfo = {};
        for (const f of ['node_roles', 'ip', 'direct_macs', 'direct_ips'] as const) if (q[f] !== undefined) info[f] = q[f];
        if (info.node_roles === '') delete info.node_roles; // empty roles are "not told", as over NATS
        const node = (await store.readCluster(cluster)).nodes.find((n) => n.job === q.job_id);
        const problem = node && checkNodeInfo(info, node);
        if (problem) throw new InvalidInputError('query', problem.reason, problem.field);
        if (changes(node, info)) await reportAndSeeFold(ctx, id, 'write_state', info, deps.options.foldWaitMs, gone.signal);
        return text(reply, await stateJson(deps, cluster));
      }
      case 'failed':
      case 'abort': {
        const node = (await store.readCluster(cluster)).nodes.find((n) => n.job === q.job_id);
        if (node?.state !== 'abort') {
          await reportAndSeeFold(ctx, id, q.state, undefined, deps.options.foldWaitMs, gone.signal);
        }
        return text(reply, await stateJson(deps, cluster));
      }
      case undefined:
        return text(reply, await stateJson(deps, cluster));
    }
  } finally {
    gone.release();
  }
}

/** Would folding `info` change the node's entry? A repeat is not sent, so it is not waited for. */
function changes(node: NodeEntry | undefined, info: ReportInfo): boolean {
  if (!node) return true;
  const now: Record<keyof ReportInfo, string> = { node_roles: node.roles, ip: node.ip, direct_macs: node.direct_macs, direct_ips: node.direct_ips };
  return (Object.keys(info) as (keyof ReportInfo)[]).some((k) => info[k] !== now[k]);
}

/** The cluster's entry of `sched/cluster_state`, as Compass-CI answered it. */
async function stateJson(deps: SchedulerDeps, cluster: string): Promise<string> {
  const raw = await deps.store.redis.hget(deps.store.keys.clusterState, cluster);
  if (raw === null) throw new NotFoundError(`cluster ${cluster} no longer exists`);
  return raw;
}
