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
