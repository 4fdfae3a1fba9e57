import { MsgDataSchema, describeZodError } from '../bus/messages';
import type { MsgData } from '../bus/messages';
import { cacheLines, hasRole } from '../client/message-client';
import type { Group } from '../client/message-client';
import type { NodeIdentity } from '../client/node-client';
import { ClusterAbortedError, InvalidInputError, TimeoutError } from '../core/errors';
import { LEGACY_PARAMS } from './legacy-query';
import type { LegacyQuery } from './legacy-query';
import type { ProxyContext } from './node-proxy';
import type { GoneSignal } from './held-waits';
import { holdMessage } from './message-waits';
import type { MessageAsk } from './message-waits';

/**
 * LAVA MultiNode messages for unmodified lkp clients on the legacy endpoint:
 * `state=send|wait|wait_all|sync&msg=ID[&role=R][&key=value...]`. The
 * endpoint speaks for the node like any node does (its token, through the
 * workers) and holds the request open until the answer is pushed. The body
 * (after the line lkp's http_get_cgi echoes) is one word, then lines:
 *   ok            then, for wait: key=value lines; wait_all, sync: JOB:key=value lines
 *   abort         then the reason
 *   retry         the long-poll limit passed: ask again (the same wait keeps its start)
 * A refusal (a limit, a bad ID or key, a role no node has) is HTTP 400 / 409 with the reason.
 */

export type MessageState = 'send' | 'wait' | 'wait_all' | 'sync';

/** The message data of a send: every query parameter that is not the endpoint's own. */
export function legacyData(rawUrl: string): MsgData {
  const params = new URL(rawUrl, 'http://localhost').searchParams;
  const data: Record<string, string> = {};
  for (const [k, v] of params) if (!LEGACY_PARAMS.has(k)) data[k] = v;
  // No data (every wait): nothing to check.
  if (Object.keys(data).length === 0) return data;
  const parsed = MsgDataSchema.safeParse(data);
  if (!parsed.success) throw new InvalidInputError('query', describeZodError(parsed.error).replace(/^message: /, ''), 'data');
  return parsed.data;
}

/** Answers one message request; `nodes` are the cluster's nodes and roles (`wait_all ROLE` needs to know who must send). */
export async function answerMessage(
  ctx: ProxyContext,
  nodes: Readonly<Group>,
  id: NodeIdentity,
  q: LegacyQuery & { state: MessageState },
  rawUrl: string,
  limitMs: number,
  signal: GoneSignal,
): Promise<string> {
  if (q.msg === undefined) throw new InvalidInputError('query', `is required for state=${q.state}`, 'msg');
  if (q.role !== undefined && q.state !== 'wait_all') throw new InvalidInputError('query', `belongs to state=wait_all, not ${q.state}`, 'role');
  const data = legacyData(rawUrl);
  const extra = Object.keys(data)[0];
  if ((q.state === 'wait' || q.state === 'wait_all') && extra !== undefined) {
    throw new InvalidInputError('query', `state=${q.state} takes msg${q.state === 'wait_all' ? ' and role' : ''} only, no data`, extra);
  }
  if (q.role !== undefined && !Object.values(nodes).some((r) => hasRole(r, q.role as string))) {
    throw new InvalidInputError('query', `no node of this cluster has role ${q.role} (roles: ${[...new Set(Object.values(nodes).flatMap((r) => r.split(/\s+/)))].join(' ')})`, 'role');
  }
  const ask: MessageAsk =
    q.state === 'send'
      ? { op: 'send', msg: q.msg, data }
      : q.state === 'sync'
        ? { op: 'sync', msg: q.msg, data, mode: 'all' }
        : { op: 'wait', msg: q.msg, mode: q.state === 'wait' ? 'any' : 'all', role: q.role };
  try {
    const held = await holdMessage(ctx, id, nodes, ask, limitMs, signal);
    if (held === 'retry') return 'retry';
    if (held === 'gone') throw new Error('the lkp client went away');
    if (q.state === 'send') return 'ok';
    return ['ok', ...cacheLines(held, q.state !== 'wait')].join('\n');
  } catch (err) {
    if (err instanceof ClusterAbortedError) return `abort\n${err.reason}`;
    if (err instanceof TimeoutError) return 'retry';
    // A refusal (RejectedError: HTTP 409 with the workers' reason) and anything else go to the error reply.
    throw err;
  }
}
