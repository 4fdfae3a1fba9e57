import type { NodeClient } from '../../src/client/node-client';

/** Every node waits at the barrier of `kind`; resolves with the results once all are answered. */
export async function allWait(nodes: NodeClient[], kind: 'wait_start' | 'wait_ready' | 'wait_finish' | 'finished'): Promise<string[]> {
  const answers = await Promise.all(nodes.map((n) => n.wait(kind)));
  return answers.map((a) => a.result);
}
