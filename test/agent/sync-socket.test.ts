import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { Subjects } from '../../src/bus/subjects';
import { MessageClient } from '../../src/client/message-client';
import { NodeClient } from '../../src/client/node-client';
import { prepareClusters } from '../../src/cluster/prepare';
import type { NodeJob } from '../../src/split/node-job';
import { startSyncServer } from '../../src/sync/server';
import type { SyncServer } from '../../src/sync/server';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * Issue 23, item 4: the agent's command socket (src/sync/server.ts) bounds
 * its connections and closes idle ones, and `CS_SYNC_CACHE` is in the
 * programs' environment from the start, naming an existing empty file.
 */
const lab = useTestServers();

function nodeJob(): NodeJob {
  const [c] = prepareClusters('suite: t\ncluster: s\nif role server:\n  srv:\n', 'job', { inlineSpec: 'nodes:\n  box--1: { roles: [server] }\n' });
  const draft = c!.nodes[0]!;
  return { ...draft, job_id: 'cs-1', cluster: 'cs-1', token: 't', group: { 'cs-1': 'server' } };
}

async function server(extra: { maxConnections?: number; idleMs?: number } = {}): Promise<{ sync: SyncServer; cache: string }> {
  const nc = await lab.res.nats(lab.config);
  const job = nodeJob();
  const node = new NodeClient(nc, new Subjects(lab.config.subjectPrefix), { cluster: job.cluster, job: job.job_id, token: job.token });
  const cache = path.join(mkdtempSync(path.join(os.tmpdir(), 'cs-cache-')), 'lava_multi_node_cache.txt');
  const sync = lab.res.add(await startSyncServer(job, new MessageClient(node, job.group), { defaultTimeoutMs: 60_000, cacheFile: cache, ...extra }), (s) => s.close());
  return { sync, cache };
}

/** Connects; resolves with what the server sent before it closed the connection. */
function connectAndRead(socketPath: string, send?: string): { sock: net.Socket; closed: Promise<string> } {
  const sock = net.connect(socketPath);
  let got = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => (got += d));
  sock.on('error', () => undefined);
  if (send !== undefined) sock.write(send);
  return { sock, closed: new Promise((resolve) => sock.once('close', () => resolve(got))) };
}

test('CS_SYNC_CACHE names an existing empty file before any lava-* call; one already there is left alone', async () => {
  const { sync, cache } = await server();
  expect(sync.env.CS_SYNC_CACHE).toBe(cache);
  expect(existsSync(cache)).toBe(true);
  expect(statSync(cache).size).toBe(0);
  // LAVA's path is shared by every agent on the host: a second agent must not empty what another's program is about to read.
  writeFileSync(cache, 'port=5201\n');
  const nc = await lab.res.nats(lab.config);
  const job = nodeJob();
  const node = new NodeClient(nc, new Subjects(lab.config.subjectPrefix), { cluster: job.cluster, job: job.job_id, token: job.token });
  lab.res.add(await startSyncServer(job, new MessageClient(node, job.group), { defaultTimeoutMs: 60_000, cacheFile: cache }), (s) => s.close());
  expect(readFileSync(cache, 'utf8')).toBe('port=5201\n');
});

test('connections past the limit are told why and closed; idle ones are closed; the socket still answers', async () => {
  const { sync } = await server({ maxConnections: 8, idleMs: 500 });
  const idle = Array.from({ length: 8 }, () => connectAndRead(sync.socketPath));
  await Promise.all(idle.map(({ sock }) => new Promise((r) => (sock.connecting ? sock.once('connect', r) : r(undefined)))));
  // 8 idle connections are open: the next ones get the reason and are closed at once.
  const extra = await Promise.all(Array.from({ length: 20 }, () => connectAndRead(sync.socketPath).closed));
  for (const line of extra) expect(JSON.parse(line)).toEqual({ ok: false, code: 'error', message: 'the node agent has 8 calls open already; try again when one ended' });
  // The idle ones are closed by the agent (they sent nothing), with nothing said.
  expect(await Promise.all(idle.map((c) => c.closed))).toEqual(Array(8).fill(''));
  // And a call is served again.
  const answer = await connectAndRead(sync.socketPath, 'not json\n').closed;
  expect(JSON.parse(answer)).toEqual({ ok: false, code: 'usage', message: 'request is not JSON' });
});
