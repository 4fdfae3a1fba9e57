import { parseDuration } from '../core/duration';
import { InvalidInputError } from '../core/errors';
import type { ClusterSpec } from '../spec/cluster-spec';
import type { Mapping, ParsedJob } from '../job/job';
import type { NodeJobDraft } from './node-job';

/** `cluster_timeout` may lie between 1 s and 30 days: a shorter one cannot be met, a longer one is a typo. */
export const MIN_CLUSTER_TIMEOUT_MS = 1000;
export const MAX_CLUSTER_TIMEOUT_MS = 30 * 86_400_000;
/** Compass-CI waits up to 8 h at a barrier. */
export const DEFAULT_CLUSTER_TIMEOUT_MS = 8 * 3_600_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
const DIRECT_NET = '192.168.222';

export interface SplitOptions {
  /** Heartbeat interval written into each node job. Default 5 s. */
  heartbeatIntervalMs?: number;
  /** Told what the split ignored (a job role no host has), one line each. Default: nothing. */
  warn?: (line: string) => void;
}

/** `vm-2p16g-multi-node--2` -> `vm-2p16g-multi-node` (Compass-CI's testbox rule). */
export function testboxOf(host: string): string {
  return host.replace(/--\d+$/, '');
}

/**
 * Splits one (expanded) job over a cluster spec, by Compass-CI's rules:
 * one node job per host whose roles meet the job's roles, in spec order;
 * direct addresses counted from `ip0` across those hosts, one per mac.
 * Pure: touches no server.
 */
export function splitJob(job: ParsedJob, spec: ClusterSpec, source: string, options: SplitOptions = {}): NodeJobDraft[] {
  const jobRoles = new Set(job.roles.map((r) => r.role));
  if (jobRoles.size === 0 && !spec.localhost) {
    throw new InvalidInputError(source, `names cluster ${spec.name} but has no "if role R:" block`, 'cluster');
  }
  const specRoles = new Set(spec.hosts.flatMap((h) => h.roles));
  const missing = [...jobRoles].filter((r) => !specRoles.has(r) && !spec.localhost);
  if (missing.length > 0 && missing.length < jobRoles.size) {
    // Compass-CI splits by the roles hosts have and ignores the rest.
    options.warn?.(`${source}: role${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of the job ${missing.length > 1 ? 'are' : 'is'} on no host of cluster spec ${spec.name}: ignored`);
  }
  if (missing.length > 0 && missing.length === jobRoles.size) {
    throw new InvalidInputError(source, `no role of the job (${missing.join(', ')}) is on a host of cluster spec ${spec.name} (hosts have: ${[...specRoles].join(', ')})`, `if role ${missing[0]}`);
  }
  const timeout = job.params.cluster_timeout;
  const clusterTimeoutMs = timeout === undefined || timeout === null ? DEFAULT_CLUSTER_TIMEOUT_MS : parseDuration(timeout, 'cluster_timeout', source);
  if (!(clusterTimeoutMs >= MIN_CLUSTER_TIMEOUT_MS && clusterTimeoutMs <= MAX_CLUSTER_TIMEOUT_MS)) {
    throw new InvalidInputError(source, `must lie between 1s and 30d (${MIN_CLUSTER_TIMEOUT_MS} to ${MAX_CLUSTER_TIMEOUT_MS} ms), got ${JSON.stringify(timeout)}`, 'cluster_timeout');
  }
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;

  const drafts: NodeJobDraft[] = [];
  let hostId = spec.ip0;
  for (const host of spec.hosts) {
    // cs-localhost: the one machine runs every role of the job itself.
    const roles = spec.localhost ? [...jobRoles] : host.roles.filter((r) => jobRoles.has(r));
    if (roles.length === 0 && !spec.localhost) continue;
    const ips: string[] = [];
    for (let i = 0; i < host.macs.length; i++) {
      if (hostId > 254) {
        throw new InvalidInputError(source, `host ${host.name} would get direct address ${DIRECT_NET}.${hostId}: host ids stop at 254 (lower ip0 or use fewer macs)`, 'ip0');
      }
      ips.push(`${DIRECT_NET}.${hostId++}`);
    }
    const blocks = job.roles.filter((b) => roles.includes(b.role));
    const vars: Mapping = {};
    for (const b of blocks) Object.assign(vars, b.vars);
    drafts.push({
      host: host.name,
      testbox: testboxOf(host.name),
      queue: testboxOf(host.name),
      node_roles: (spec.localhost ? roles : host.roles).join(' '),
      direct_macs: host.macs.join(' '),
      direct_ips: ips.join(' '),
      nr_nic: 2,
      cluster_spec: spec.name,
      standalone: spec.localhost,
      params: job.params,
      programs: blocks.flatMap((b) => b.programs),
      vars,
      cluster_timeout_ms: clusterTimeoutMs,
      heartbeat_interval_ms: heartbeatIntervalMs,
    });
    if (spec.localhost) break;
  }
  if (drafts.length === 0) throw new InvalidInputError(source, `no host of cluster spec ${spec.name} has a role of the job`, 'cluster');
  return drafts;
}
