import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ReportInfo } from '../bus/messages';
import type { NodeIdentity } from '../client/node-client';
import { checkNodeInfo } from '../cluster/node-info';
import { rolesIpLines } from '../cluster/view';
import type { NodeEntry } from '../cluster/view';
import { InvalidInputError, NotFoundError } from '../core/errors';
import type { SchedulerDeps } from './deps';
import { AddressList } from './address-list';
import { identifyLegacyNode } from './legacy-identify';
import { LEGACY_ROUTES, LegacyQuerySchema } from './legacy-query';
import type { LegacyQuery } from './legacy-query';
import { barrierRouter, reportAndSeeFold, waitAtBarrier } from './node-proxy';
import type { ProxyContext } from './node-proxy';
import { SharedSubscriptions } from '../bus/shared-subscriptions';
import { ClientGone } from './held-waits';
import type { GoneSignal } from './held-waits';
import { answerMessage } from './legacy-messages';
import { LegacyReads } from './legacy-reads';

/**
 * `GET /~lkp/cgi-bin/lkp-cluster-sync` (and under `/scheduler`), answering
 * exactly what lkp-tests' `lib/job.sh` reads after `tail -n +2`:
 * - `wait_start|wait_ready|wait_finish`: one word, `start`, `ready`, `finish`
 *   or `abort`, when the barrier resolves; `retry` at the long-poll limit;
 * - `finished` (with `job_id`, Compass-CI's client): held until the `finish`
 *   barrier resolves (`finish`, or `abort`, at the latest at its deadline),
 *   never `retry`: lkp's `run_test` sends it once and does not ask again, and
 *   Compass-CI blocks it until the whole cluster finishes;
 * - `finished` without `job_id` (intel's client): the state JSON at once;
 * - `roles_ip`: `direct_ROLE_ips=IPS` and `ROLE=IP` lines, never an empty line;
 * - `write_state|failed|abort` (or no state): the cluster's state JSON, as
 *   stored in `sched/cluster_state`;
 * - `send|wait|wait_all|sync` with `msg=ID`: LAVA MultiNode messages (legacy-messages.ts).
 * Bodies carry no trailing newline, as Compass-CI sent them. The node job is
 * `job_id`, or found by spec and host for clients without it (legacy-identify.ts).
 */
export function registerLegacyRoutes(app: FastifyInstance, deps: SchedulerDeps): void {
  const shared = deps.shared ?? new SharedSubscriptions(deps.nc);
  const reads = deps.legacyReads ?? legacyReadsOf(deps, shared);
  app.addHook('onClose', async () => shared.close());
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
    app.get<{ Querystring: LegacyQuery }>(url, { schema: { querystring: LegacyQuerySchema }, ...(onRequest ? { onRequest } : {}) }, (request, reply) => answer(deps, shared, reads, request, reply));
  }
}

/** The scheduler's LegacyReads: cluster identities are kept on the barrier routers of `shared`. */
export function legacyReadsOf(deps: Pick<SchedulerDeps, 'store' | 'subjects'>, shared: SharedSubscriptions): LegacyReads {
  return new LegacyReads(deps.store.redis, deps.store.keys, (cluster) => barrierRouter({ shared, subjects: deps.subjects }, cluster));
}

/** A signal that fires when the HTTP client goes away before the answer. */
function clientGone(reply: FastifyReply): { signal: ClientGone; release: () => void } {
  const signal = new ClientGone();
  const onClose = (): void => {
    if (!reply.raw.writableEnded) signal.fire();
  };
  reply.raw.on('close', onClose);
  return { signal, release: () => reply.raw.off('close', onClose) };
}

function text(reply: FastifyReply, body: string): FastifyReply {
  return reply.type('text/plain; charset=utf-8').send(body);
}

async function answer(deps: SchedulerDeps, shared: SharedSubscriptions, reads: LegacyReads, request: FastifyRequest<{ Querystring: LegacyQuery }>, reply: FastifyReply): Promise<FastifyReply> {
  const q = request.query;
  const { store } = deps;
  const target = await identifyLegacyNode(store, reads, q);
  const { cluster, job } = target;
  const identity = await reads.identity(cluster);
  if (!identity) throw new NotFoundError(`cluster ${cluster} of job ${job} no longer exists`);
  const id: NodeIdentity = { cluster, job, token: identity.token };
  const ctx: ProxyContext = { nc: deps.nc, subjects: deps.subjects, shared };
  const gone = clientGone(reply);
  try {
    switch (q.state) {
      case 'finished':
      case 'wait_start':
      case 'wait_ready':
      case 'wait_finish': {
        if (q.state === 'finished' && target.flavour === 'intel') return text(reply, await intelFinished(deps, reads, ctx, id, request, gone.signal));
        // Compass-CI's `finished` is held until the finish barrier resolves (its deadline bounds it)
        const limit = q.state === 'finished' ? undefined : deps.options.longPollMs;
        const outcome = await waitAtBarrier(ctx, id, q.state, limit, gone.signal);
        if (outcome === 'gone') {
          request.log.info({ job, state: q.state }, 'lkp client went away during a long poll');
          reply.hijack();
          reply.raw.destroy();
          return reply;
        }
        return text(reply, outcome);
      }
      case 'roles_ip': {
        const view = await store.readCluster(cluster);
        const lines = rolesIpLines(view.nodes);
        // an empty line would make lkp `export ""`, which kills dash: say there are none in a comment line lkp skips
        return text(reply, lines.length > 0 ? lines.join('\n') : `# cluster ${cluster} has no roles`);
      }
      case 'write_state': {
        const info: ReportInfo = {};
        for (const f of ['node_roles', 'ip', 'direct_macs', 'direct_ips'] as const) if (q[f] !== undefined) info[f] = q[f];
        if (info.node_roles === '') delete info.node_roles; // empty roles are "not told", as over NATS
        const node = (await store.readCluster(cluster)).nodes.find((n) => n.job === job);
        const problem = node && checkNodeInfo(info, node);
        if (problem) throw new InvalidInputError('query', problem.reason, problem.field);
        if (changes(node, info)) await reportAndSeeFold(ctx, id, 'write_state', info, deps.options.foldWaitMs, gone.signal);
        return text(reply, await reads.stateJson(cluster));
      }
      case 'failed':
      case 'abort': {
        const node = (await store.readCluster(cluster)).nodes.find((n) => n.job === job);
        if (node?.state !== 'abort') {
          await reportAndSeeFold(ctx, id, q.state, undefined, deps.options.foldWaitMs, gone.signal);
        }
        return text(reply, await reads.stateJson(cluster));
      }
      case undefined:
        return text(reply, await reads.stateJson(cluster));
      case 'send':
      case 'wait':
      case 'wait_all':
      case 'sync': {
        // LAVA MultiNode messages (legacy-messages.ts), held open like the barrier waits.
        try {
          return text(reply, await answerMessage(ctx, identity.nodes, id, { ...q, state: q.state }, request.raw.url ?? request.url, deps.options.longPollMs, gone.signal));
        } catch (err) {
          if (!gone.signal.aborted) throw err;
          request.log.info({ job: q.job_id, state: q.state }, 'lkp client went away during a long poll');
          reply.hijack();
          reply.raw.destroy();
          return reply;
        }
      }
    }
  } finally {
    gone.release();
  }
}

/**
 * `finished` from intel's lkp-tests, answered at once with the cluster's
 * state JSON: its `start_daemon` sends it right after starting the daemon,
 * before `write_state` and `wait_ready`, so holding it would deadlock. From a
 * node not yet at `ready` it means "my daemon started", not "my test ended":
 * it is recorded (meta `daemon_started:<job>`) without moving the node's
 * state, or `ready` could resolve before that node's `write_state` and the
 * others would export an empty address for its roles. From a node at
 * `ready` it is the test's end, folded as usual.
 */
async function intelFinished(deps: SchedulerDeps, reads: LegacyReads, ctx: ProxyContext, id: NodeIdentity, request: FastifyRequest, signal: GoneSignal): Promise<string> {
  const node = (await deps.store.readCluster(id.cluster)).nodes.find((n) => n.job === id.job);
  if (node?.state === '' || node?.state === 'start') {
    await deps.store.recordDaemonStarted(id.cluster, id.job);
    request.log.info({ cluster: id.cluster, job: id.job }, 'intel lkp client reported finished before ready (its daemon started): recorded, state unchanged');
  } else if (node?.state === 'ready') {
    await reportAndSeeFold(ctx, id, 'finished', undefined, deps.options.foldWaitMs, signal);
  }
  return reads.stateJson(id.cluster);
}

/** Would folding `info` change the node's entry? A repeat is not sent, so it is not waited for. */
function changes(node: NodeEntry | undefined, info: ReportInfo): boolean {
  if (!node) return true;
  const now: Record<keyof ReportInfo, string> = { node_roles: node.roles, ip: node.ip, direct_macs: node.direct_macs, direct_ips: node.direct_ips };
  return (Object.keys(info) as (keyof ReportInfo)[]).some((k) => info[k] !== now[k]);
}
