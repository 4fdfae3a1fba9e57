import { Redis } from 'ioredis';
import { startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';
import { runSequence } from './sequence';
import type { Sequence } from './sequence';

/**
 * Counterexamples the model tests found, shrunk by fast-check and kept by
 * name: each once made the Lua fold and the model disagree.
 */
let server: LocalServer;
let redis: Redis;
beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  await redis.quit();
  await server.dispose();
});

const CASES: Record<string, Sequence> = {
  // A report id is unique within its cluster only (DESIGN §5): a report of cluster B that
  // carries an id cluster A already used is a new report of B, not A's duplicate. The fold
  // kept its dedupe records under a global key, so A's report pre-claimed B's id, and B's
  // wait_start was answered with A's outcome and never folded: B's start never resolved.
  'a report id used by another cluster first is still folded in this one': {
    a: ['server'],
    b: ['server'],
    timeoutMs: 1000,
    steps: [
      { t: 'batch', actions: [{ t: 'report', target: 'A', node: 0, kind: 'failed', goodToken: true }] },
      { t: 'batch', actions: [{ t: 'reuse-id', pick: 0, target: 'B', node: 0, kind: 'wait_start' }] },
    ],
  },
  // A send's dedupe record was made small (the ID and who asked, not the ID's state: issue 23),
  // and with it forgot whether the first send changed anything: its repeat answered
  // changed=false where the first had answered true. A repeat answers what the first did.
  'a repeated send answers what the first send did': {
    a: ['server'],
    b: ['server'],
    optional: [],
    timeoutMs: 1000,
    steps: [
      { t: 'batch', actions: [{ t: 'report', target: 'A', node: 0, kind: 'send', goodToken: true }] },
      { t: 'batch', actions: [{ t: 'again', pick: 0 }] },
    ],
  },
};

test.each(Object.entries(CASES))('%s', async (_name, seq) => {
  await runSequence(redis, seq);
});
