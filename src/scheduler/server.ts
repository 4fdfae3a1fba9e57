import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { SharedSubscriptions } from '../bus/shared-subscriptions';
import { LIMITS } from '../core/safe-yaml';
import { registerClusterRoutes } from './clusters-route';
import type { SchedulerDeps } from './deps';
import { sendError } from './error-reply';
import { registerJobRoutes } from './jobs-route';
import { legacyReadsOf, registerLegacyRoutes } from './legacy-route';
import { registerResultRoutes } from './results-route';
import { redisGate } from './redis-gate';
import { zodValidatorCompiler } from './zod-validator';

/** Content types a job may come as; every one is read as text and parsed by the bounded YAML loader. */
const TEXT_TYPES = ['application/json', 'application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'text/plain'];

/**
 * Connections waiting to be accepted (`listen`'s backlog; the kernel caps it at
 * net.core.somaxconn). Node's default, 511, let the SYNs of thousands of lkp
 * clients that connect at once overflow while the process was busy, and
 * some of them saw ECONNRESET. docs/bounds.md lists the limits to raise with it.
 */
export const LISTEN_BACKLOG = 8192;

/**
 * How long an idle keep-alive connection stays open, ms: longer than the
 * clients' own (undici 4 s, wget none), so the server never closes one a
 * client is about to reuse (which it sees as ECONNRESET).
 */
export const KEEP_ALIVE_MS = 75_000;

/**
 * The scheduler's HTTP server, not yet listening: `POST /jobs`,
 * `GET /clusters/:id` and the legacy lkp endpoint, then `deps.routes`.
 * Bodies are at most 1 MiB. The caller owns the connections in `deps`.
 */
export function buildServer(input: SchedulerDeps): FastifyInstance {
  const shared = input.shared ?? new SharedSubscriptions(input.nc);
  const legacyReads = input.legacyReads ?? legacyReadsOf(input, shared);
  const deps: SchedulerDeps = { ...input, shared, legacyReads };
  const logger: FastifyBaseLogger | undefined = deps.logger;
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: LIMITS.jobBytes,
    // lkp's long polls may be held for minutes; Node's default would cut them at 5 min.
    requestTimeout: 0,
    keepAliveTimeout: KEEP_ALIVE_MS,
    // On close, cut open long polls instead of waiting for them; lkp's client asks again.
    forceCloseConnections: true,
    // maxParamLength: an id in a path longer than the router's default (100) would get 404 (the HTTP parser bounds the whole request line at 16 KiB) before the id rule could say why (400).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 16_384 },
    // X-Forwarded-For is believed only from these proxies (the closest address not among them is request.ip).
    trustProxy: deps.options.trustedProxies ?? false,
  });
  app.setValidatorCompiler(zodValidatorCompiler);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(TEXT_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.addHook('onRequest', redisGate(deps));
  registerJobRoutes(app, deps);
  registerClusterRoutes(app, deps);
  registerResultRoutes(app, deps);
  registerLegacyRoutes(app, deps);
  for (const register of deps.routes ?? []) register(app, deps);
  return app;
}
