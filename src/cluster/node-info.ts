import type { ReportInfo } from '../bus/messages';
import { wordsOf } from '../bus/messages';
import type { NodeEntry } from './view';

/** Which field of a node's `write_state` does not fit its entry, and why. */
export interface NodeInfoProblem {
  field: keyof ReportInfo;
  reason: string;
}

/**
 * Checks what a node says about itself against its entry (which holds what
 * the split gave it): `node_roles` must be its own roles (or empty), and
 * `direct_ips` as many addresses as it has MACs (those it sends, or else its
 * entry's). The formats were checked by `ReportInfoSchema`.
 */
export function checkNodeInfo(info: ReportInfo, node: Pick<NodeEntry, 'roles' | 'direct_macs'>): NodeInfoProblem | undefined {
  if (info.node_roles !== undefined && info.node_roles !== '' && info.node_roles !== wordsOf(node.roles).join(' ')) {
    return { field: 'node_roles', reason: `must be this node's roles "${node.roles}" (or empty), not "${info.node_roles}"` };
  }
  if (info.direct_ips !== undefined) {
    const macs = wordsOf(info.direct_macs ?? node.direct_macs).length;
    const ips = wordsOf(info.direct_ips).length;
    if (ips !== macs) return { field: 'direct_ips', reason: `must be ${macs} IPv4 address${macs === 1 ? '' : 'es'}, one per MAC of this node, not ${ips}` };
  }
  return undefined;
}

/**
 * `checkNodeInfo` for the report bridge, reading the node's entry only for
 * info it has not yet accepted from that node: agents send their info with
 * every wait report, and it does not change.
 */
export class NodeInfoChecker {
  private readonly accepted = new Map<string, string>();
  constructor(
    private readonly readNode: (cluster: string, job: string) => Promise<Pick<NodeEntry, 'roles' | 'direct_macs'> | undefined>,
    private readonly maxEntries = 10_000,
  ) {}

  /** A problem as `info.<field>: reason`, or undefined when the info fits (or says nothing to check). */
  async problem(cluster: string, job: string, info: ReportInfo | undefined): Promise<string | undefined> {
    if (info?.node_roles === undefined && info?.direct_ips === undefined) return undefined;
    const key = `${cluster} ${job}`;
    const said = JSON.stringify([info.node_roles, info.direct_ips, info.direct_macs]);
    if (this.accepted.get(key) === said) return undefined;
    const node = await this.readNode(cluster, job);
    const problem = node && checkNodeInfo(info, node);
    if (problem) return `info.${problem.field}: ${problem.reason}`;
    if (this.accepted.size >= this.maxEntries) this.accepted.clear();
    this.accepted.set(key, said);
    return undefined;
  }
}
