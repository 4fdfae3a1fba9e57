import { InvalidInputError } from '../core/errors';
import { admissionOf } from '../admission/settings';
import type { ClusterAdmission } from '../admission/settings';
import { LIMITS, loadYamlDocuments } from '../core/safe-yaml';
import type { Plain } from '../core/safe-yaml';
import { expandJob } from '../job/expand';
import { classifyByShape, parseJob } from '../job/job';
import type { Mapping, ProgramClassifier } from '../job/job';
import { checkSpecName, loadClusterSpec, localhostSpec, parseClusterSpec, parseClusterSpecText, LOCALHOST_SPECS } from '../spec/cluster-spec';
import type { ClusterSpec } from '../spec/cluster-spec';
import { splitJob } from '../split/split';
import type { NodeJobDraft } from '../split/node-job';
import { parsePolicy } from '../results/policy';
import type { ClusterPolicy } from '../results/policy';

/** Where a job's cluster spec comes from. */
export interface SpecSource {
  /** A directory of specs named like the job's `cluster:` (lkp-tests' `cluster/`). */
  clusterDir?: string;
  /** The spec itself, YAML text, used whatever the job's `cluster:` says. */
  inlineSpec?: string;
}

export interface PrepareOptions extends SpecSource {
  /** Decides which role keys are programs. Default: by the value's shape. */
  isProgram?: ProgramClassifier;
  heartbeatIntervalMs?: number;
  /** Largest node job, bytes of JSON, aliases expanded. Default {@link MAX_NODE_JOB_BYTES}. */
  maxNodeJobBytes?: number;
}

/**
 * A node job goes to its node in one NATS message, whose size the server
 * bounds (`max_payload`, 1 MiB by default): a node job may be at most a
 * quarter of that, so the reply around it and a smaller server still fit.
 */
export const MAX_NODE_JOB_BYTES = 256 * 1024;
/** What the ids and token assigned at submit add to a draft's JSON, at most, bytes. */
const ID_AND_TOKEN_BYTES = 512;

/** The node job bound for a NATS server that carries `maxPayload` bytes: well under it. */
export function nodeJobLimit(maxPayload: number): number {
  return Math.min(MAX_NODE_JOB_BYTES, Math.floor(maxPayload / 4));
}

/** More node jobs than this from one submitted file is a mistake (or an attack), not a test plan. */
export const MAX_NODE_JOBS = 10_000;

/** One expanded job, split: the drafts of one cluster. */
export interface PreparedCluster {
  /** Position of this job among the expansions of the submitted file. */
  index: number;
  job: Plain;
  spec: ClusterSpec;
  nodes: NodeJobDraft[];
  /** What was ignored: keys of the spec cluster-sync does not use, job roles no host has. */
  warnings: string[];
  /** Its failure policy (`success`, `cluster_retries`, `essential`). */
  policy: ClusterPolicy;
  /** Meta fields linking it to the cluster it repeats (an attempt of a retry, a re-run). Default none. */
  lineage?: Record<string, string | number>;
  /** Job fields `admit_timeout` and `priority` (DESIGN §9), checked here. */
  admission: ClusterAdmission;
}

function resolveSpec(name: string | undefined, roles: string[], own: Mapping | undefined, opts: SpecSource, source: string): ClusterSpec {
  // Compass-CI: cs-localhost (or no cluster) runs locally whatever else the job says, then the job's own cluster_spec, then the file
  if (own !== undefined && name === undefined && opts.inlineSpec === undefined) {
    // Compass-CI's cluster.cr returns a job without cluster: unsplit before it reads cluster_spec: the spec would be silently ignored.
    throw new InvalidInputError(
      source,
      'is used only together with cluster: NAME (Compass-CI splits a job only when cluster: names a spec other than cs-localhost, and then reads cluster_spec before the file); add cluster: with the spec name, or remove cluster_spec to run on one machine',
      'cluster_spec',
    );
  }
  if (own !== undefined && name !== undefined && !LOCALHOST_SPECS.has(name)) return parseClusterSpec(own, checkSpecName(name, source), `${source}: cluster_spec`);
  if (opts.inlineSpec !== undefined) return parseClusterSpecText(opts.inlineSpec, name ?? 'inline', 'inline cluster spec');
  // cs-localhost (or no cluster at all): this one machine runs every role itself.
  if (name === undefined || LOCALHOST_SPECS.has(name)) return localhostSpec(roles);
  if (opts.clusterDir === undefined) {
    throw new InvalidInputError(source, `names cluster ${name}, but no cluster spec directory (--cluster-dir) or inline spec was given`, 'cluster');
  }
  return loadClusterSpec(name, opts.clusterDir);
}

/**
 * Text of a job file -> the node jobs each of its expansions splits into.
 * Pure apart from reading spec files: touches no server. Fails whole: a bad
 * expansion fails the file, so nothing is half-submitted.
 */
export function prepareClusters(text: string, source: string, opts: PrepareOptions = {}): PreparedCluster[] {
  const docs = loadYamlDocuments(text, source, LIMITS.jobBytes);
  if (docs.length === 0) throw new InvalidInputError(source, 'is empty');
  const jobs = expandJob(docs, source);
  let nodeJobs = 0;
  return jobs.map((doc, index) => {
    const where = jobs.length > 1 ? `${source} (job ${index + 1} of ${jobs.length})` : source;
    const parsed = parseJob(doc, where, opts.isProgram ?? classifyByShape);
    const policy = parsePolicy(doc, where);
    const spec = resolveSpec(
      parsed.cluster,
      parsed.roles.map((r) => r.role),
      parsed.clusterSpec,
      opts,
      where,
    );
    const warnings = [...spec.warnings];
    const nodes = splitJob(parsed, spec, where, { heartbeatIntervalMs: opts.heartbeatIntervalMs, warn: (line) => warnings.push(line) });
    const limit = opts.maxNodeJobBytes ?? MAX_NODE_JOB_BYTES;
    for (const n of nodes) {
      // Measured after YAML aliases are expanded: 60 KB of text can hold a 2.5 MB job.
      const bytes = Buffer.byteLength(JSON.stringify(n)) + ID_AND_TOKEN_BYTES;
      if (bytes > limit) {
        throw new InvalidInputError(where, `node job for host ${n.host} is ${bytes} bytes once expanded; the limit is ${limit} bytes (a node job reaches its node in one NATS message)`);
      }
    }
    // Expansions times hosts: 10,000 jobs on a 254-host spec would be 2.5 million node jobs.
    nodeJobs += nodes.length;
    if (nodeJobs > MAX_NODE_JOBS) {
      throw new InvalidInputError(source, `splits into more than ${MAX_NODE_JOBS} node jobs (${jobs.length} jobs on cluster spec ${spec.name} of ${spec.hosts.length} hosts)`);
    }
    return { index, job: doc, spec, nodes, warnings, policy, admission: admissionOf(parsed.params, where) };
  });
}
