import type { ZodType } from 'zod';
import { InfoFields } from '../bus/messages';
import type { Barrier, NodeState, Result } from '../core/states';

/** A node's entry in `sched/cluster_state` (Compass-CI's shape). */
export interface NodeEntry {
  state: NodeState;
  roles: string;
  ip: string;
  direct_ips: string;
  direct_macs: string;
  entire_state: string;
}

export interface BarrierView {
  barrier: Barrier;
  result: Result | undefined;
  reason: string | undefined;
  /** When it resolved, ms. */
  at: number | undefined;
  /** When it times out, ms; set once the previous barrier resolved. */
  deadline: number | undefined;
}

/** What `GET /clusters/:id` and `cluster-sync status ID` show. */
export interface ClusterView {
  id: string;
  spec: string;
  created: number;
  /** The next barrier to resolve, `undefined` once the cluster is over. */
  pending: Barrier | undefined;
  /** `finish` or `abort` once the cluster is over. */
  final: 'finish' | 'abort' | undefined;
  nodes: ({ job: string } & NodeEntry)[];
  barriers: BarrierView[];
  cluster_timeout_ms: number;
  heartbeat_interval_ms: number;
}

/**
 * Compass-CI's `roles_ip` answer: for every node and each of its roles,
 * `direct_ROLE_ips=IPS` and `ROLE=IP`.
 */
export function rolesIpLines(nodes: readonly Pick<NodeEntry, 'roles' | 'ip' | 'direct_ips'>[]): string[] {
  const lines: string[] = [];
  // Every line is built from values that pass write_state's rules (lkp writes these lines into
  // /etc/hosts and the environment of every node); a value that does not, say one stored by an
  // older version, is left out rather than passed on.
  const valid = (schema: ZodType<string>, v: string): string => {
    const r = schema.safeParse(v);
    return r.success ? r.data : '';
  };
  for (const n of nodes) {
    const ip = valid(InfoFields.ip, n.ip);
    const directIps = valid(InfoFields.direct_ips, n.direct_ips);
    for (const role of valid(InfoFields.node_roles, n.roles).split(' ').filter(Boolean)) {
      lines.push(`direct_${role}_ips=${directIps}`);
      lines.push(`${role}=${ip}`);
    }
  }
  return lines;
}
