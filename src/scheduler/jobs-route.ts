import { payloadLimit, publishBounded } from '../bus/bounded';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { nodeJobLimit, prepareClusters } from '../cluster/prepare';
import { SpecNotFoundError } from '../spec/cluster-spec';
import type { SpecSource } from '../cluster/prepare';
import { submitClusters } from '../cluster/submit';
import type { SubmittedCluster } from '../cluster/submit';
import { InvalidInputError, NotFoundError } from '../core/errors';
import { LIMITS, isMapping, loadYamlDocuments } from '../core/safe-yaml';
import type { Plain } from '../core/safe-yaml';
import { requireBearer } from './auth';
import type { SchedulerDeps } from './deps';
import { fingerprintOf, idempotencyKeyOf, runOnce } from './idempotency';

/** One node job in the submit answer: Compass-CI's `{job_id, message, job_state}` plus where it went. */
export interface SubmitMessage {
  job_id: string;
  message: string;
  job_state: 'submit';
  /** The cluster id (the first node job's id). */
  cluster: string;
  /** Which expansion of the submitted file this cluster is, from 0. */
  job_index: number;
  /** The cluster spec's name. */
  spec: string;
  host: string;
  testbox: string;
  /** BullMQ queue the node job waits in: `tb-<queue>`. */
  queue: string;
  node_roles: string;
}

const WRAPPER_KEYS = new Set(['job', 'cluster_spec']);

/** A JSON or YAML value that is text as it is, or a mapping written out as JSON (which is YAML). */
function asText(value: Plain | undefined, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (isMapping(value)) return JSON.stringify(value);
  throw new InvalidInputError('request body', 'must be YAML text or a mapping', field);
}

/**
 * Reads a submit body. YAML (application/yaml, text/yaml, text/plain) is the
 * job file itself, its spec from the scheduler's cluster directory. JSON is
 * either a job, or `{"job": JOB, "cluster_spec": SPEC}` where each is YAML
 * text or a mapping: the inline spec is used whatever the job's `cluster:` says.
 */
export function readSubmitBody(body: string, contentType: string, clusterDir: string | undefined): { text: string; spec: SpecSource } {
  if (!contentType.includes('json')) return { text: body, spec: { clusterDir } };
  const docs = loadYamlDocuments(body, 'request body', LIMITS.jobBytes);
  const doc = docs[0];
  if (docs.length === 1 && isMapping(doc) && 'job' in doc && Object.keys(doc).every((k) => WRAPPER_KEYS.has(k))) {
    const text = asText(doc.job, 'job');
    if (text === undefined) throw new InvalidInputError('request body', 'is empty', 'job');
    const inlineSpec = asText(doc.cluster_spec, 'cluster_spec');
    return { text, spec: inlineSpec === undefined ? { clusterDir } : { inlineSpec } };
  }
  return { text: body, spec: { clusterDir } };
}

export function submitAnswer(clusters: SubmittedCluster[]): SubmitMessage[] {
  return clusters.flatMap((c) =>
    c.jobs.map((j) => ({
      job_id: j.job_id,
      // Compass-CI's message field: empty, or what the split ignored
      message: c.warnings.join('; '),
      job_state: 'submit' as const,
      cluster: c.cluster,
      job_index: c.index,
      spec: c.spec,
      host: j.host,
      testbox: j.testbox,
      queue: j.queue,
      node_roles: j.node_roles,
    })),
  );
}

/** Expands and splits; a spec the cluster directory lacks is the submitter's mistake (400), not a missing route. */
function prepareSubmit(text: string, spec: SpecSource, maxNodeJobBytes: number): ReturnType<typeof prepareClusters> {
  try {
    return prepareClusters(text, 'job', { ...spec, maxNodeJobBytes });
  } catch (err) {
    // The submitter learns which spec is missing, not where the scheduler keeps its files.
    if (err instanceof SpecNotFoundError) throw new InvalidInputError('job', `cluster spec ${JSON.stringify(err.spec)} is not in the scheduler's cluster directory`, 'cluster', { cause: err });
    if (err instanceof NotFoundError) throw new InvalidInputError('job', 'its cluster spec cannot be read', 'cluster', { cause: err });
    throw err;
  }
}

/** `POST /jobs`: bearer token first, then expand, split and submit; every node job in Compass-CI's answer shape. */
export function registerJobRoutes(app: FastifyInstance, deps: SchedulerDeps): void {
  app.post('/jobs', { onRequest: requireBearer(deps.options.apiToken) }, async (request: FastifyRequest) => {
    if (typeof request.body !== 'string' || request.body.trim() === '') throw new InvalidInputError('request body', 'is empty; send a job');
    const { text, spec } = readSubmitBody(request.body, request.headers['content-type'] ?? '', deps.options.clusterDir);
    const prepared = prepareSubmit(text, spec, nodeJobLimit(payloadLimit(deps.nc)));
    const key = idempotencyKeyOf(request.headers);
    const mark = deps.replication?.mark(deps.queues.connection) ?? 0;
    // A repeat of a request with the same Idempotency-Key gets the first one's answer and creates nothing.
    const { answer, repeated } = await runOnce(deps.store.redis, deps.store.keys, 'jobs', key, fingerprintOf(request.headers['content-type'] ?? '', request.body), async () => {
      // Watchers and the live page hear of a new cluster at once, not at its first report.
      const clusters = await submitClusters(deps.store, deps.queues, prepared, (cid, event) => publishBounded(deps.nc, deps.subjects.event(cid), event, request.log));
      request.log.info({ clusters: clusters.map((c) => c.cluster) }, 'submitted');
      for (const c of clusters) for (const w of c.warnings) request.log.warn({ cluster: c.cluster }, w);
      return submitAnswer(clusters);
    });
    // Answered only once the replicas hold every cluster (a NotReplicatedError is a 503: the clusters may be lost in a failover).
    await deps.replication?.waitForReplicas(deps.queues.connection, mark);
    if (repeated) request.log.info({ idempotency_key: key }, 'submit repeated; answered as the first');
    return answer;
  });
}
