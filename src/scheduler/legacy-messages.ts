import { MsgDataSchema, describeZodError } from '../bus/messages';
import type { MsgData } from '../bus/messages';
import { MessageClient, cacheLines } from '../client/message-client';
import { NodeClient } from '../client/node-client';
import type { NodeIdentity } from '../client/node-client';
import type { ClusterStore } from '../cluster/store';
import { ClusterAbortedError, InvalidInputError, TimeoutError } from '../core/errors';
import { LEGACY_PARAMS } from './legacy-query';
import type { LegacyQuery } from './legacy-query';
import type { ProxyContext } from './node-proxy';

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
  const parsed = MsgDataSchema.safeParse(data);
  if (!parsed.success) throw new InvalidInputError('query', describeZodError(parsed.error).replace(/^message: /, ''), 'data');
  return parsed.data;
}

export async function answerMessage(
  ctx: ProxyContext,
  store: ClusterStore,
  id: NodeIdentity,
  q: LegacyQuery & { state: MessageState },
  rawUrl: string,
  limitMs: number,
  signal: AbortSignal,
): Promise<string> {
  if (q.msg === undefined) throw new InvalidInputError('query', `is required for state=${q.state}`, 'msg');
  if (q.role !== undefined && q.state !== 'wait_all') throw new InvalidInputError('query', `belongs to state=wait_all, not ${q.state}`, 'role');
  const data = legacyData(rawUrl);
  const extra = Object.keys(data)[0];
  if ((q.state === 'wait' || q.state === 'wait_all') && extra !== undefined) {
    throw new InvalidInputError('query', `state=${q.state} takes msg${q.state === 'wait_all' ? ' and role' : ''} only, no data`, extra);
  }
  // The cluster's nodes and roles, read once: wait_all needs to know who must send.
  const group = Object.fromEntries((await store.readCluster(id.cluster)).nodes.map((n) => [n.job, n.roles]));
  const node = new NodeClient(ctx.nc, ctx.subjects, id, { giveUpAfterMs: limitMs });
  const messages = new MessageClient(node, group);
  const opts = { timeoutMs: limitMs, signal };
  try {
    switch (q.state) {
      case 'send':
        await messages.send(q.msg, data, opts);
        return 'ok';
      case 'wait':
        return ['ok', ...cacheLines(await messages.wait(q.msg, 'any', undefined, opts), false)].join('\n');
      case 'wait_all':
        return ['ok', ...cacheLines(await messages.wait(q.msg, 'all', q.role, opts), true)].join('\n');
      case 'sync':
        return ['ok', ...cacheLines(await messages.sync(q.msg, data, opts), true)].join('\n');
    }
  } catch (err) {
    if (err instanceof ClusterAbortedError) return `abort\n${err.reason}`;
    if (err instanceof TimeoutError) return 'retry';
    if (err instanceof InvalidInputError) throw new InvalidInputError('query', err.message.slice(err.source.length + 2), q.state === 'wait_all' ? 'role' : 'msg');
    // A refusal (RejectedError: HTTP 409 with the workers' reason) and anything else go to the error reply.
    throw err;
  } finally {
    await messages.close();
    await node.close();
  }
}
