import { MessageClient, cacheLines } from '../../src/client/message-client';
import type { Group } from '../../src/client/message-client';
import type { NodeClient } from '../../src/client/node-client';
import type { SubmittedCluster } from '../../src/cluster/submit';
import { ClusterAbortedError, InvalidInputError, RejectedError, TimeoutError } from '../../src/core/errors';
import type { ClusterEvent } from '../../src/fold/outcome';
import { startWorkers } from '../../workers';
import { nodeClients, nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

/** Named messages (LAVA MultiNode parity) through real workers, NATS and Redis, with the client library. */

const lab = useTestServers({ per: 'test', workers: true });
const { res } = lab;

/** N nodes (node 1 server, the others client), each with its NodeClient and MessageClient. */
async function cluster(n: number, heartbeatMs?: number): Promise<{ c: SubmittedCluster; nodes: NodeClient[]; msgs: MessageClient[]; jobs: string[] }> {
  const { job, spec } = nodesJob(n);
  const [c] = await submitInline(res, lab.config, job, spec, heartbeatMs);
  const nodes = await nodeClients(res, lab.config, c!);
  const group: Group = Object.fromEntries(c!.jobs.map((j) => [j.job_id, j.node_roles]));
  const msgs = nodes.map((node) => res.add(new MessageClient(node, group), (m) => m.close()));
  return { c: c!, nodes, msgs, jobs: c!.jobs.map((j) => j.job_id) };
}

async function messageEvents(cid: string): Promise<Extract<ClusterEvent, { type: 'message' }>[]> {
  const entries = await lab.workers.store.redis.xrange(lab.workers.store.keys.events(cid), '-', '+');
  return entries.map(([, f]) => JSON.parse(f[1] as string) as ClusterEvent).filter((e): e is Extract<ClusterEvent, { type: 'message' }> => e.type === 'message');
}

test('a wait registered before the send is released by it and gets the data; a repeat wait answers at once', async () => {
  const { msgs, jobs, c } = await cluster(2);
  const [server, client] = msgs as [MessageClient, MessageClient];
  const waiting = client.wait('server-ready', 'any', undefined);
  // The wait is folded (recorded) before the server sends.
  await eventually(async () => (await messageEvents(c.cluster)).some((e) => e.op === 'wait'), 'the wait to be recorded');
  await server.send('server-ready', { ip: '10.0.0.1', port: '5201' });
  const st = await waiting;
  expect(cacheLines(st, false)).toEqual(['ip=10.0.0.1', 'port=5201']);
  expect(cacheLines(st, true)).toEqual([`${jobs[0]}:ip=10.0.0.1`, `${jobs[0]}:port=5201`]);
  // LAVA: the ID stays; waiting again needs no new send.
  const again = await client.wait('server-ready', 'any', undefined, { timeoutMs: 5000 });
  expect(again.senders.map((s) => s.job)).toEqual([jobs[0]]);
  const evs = await messageEvents(c.cluster);
  const send = evs.find((e) => e.op === 'send');
  expect(send?.released?.map((r) => r.job)).toEqual([jobs[1]]);
});

test('sending again with the same ID adds data; a key sent again takes the new value', async () => {
  const { msgs, jobs } = await cluster(2);
  const [a, b] = msgs as [MessageClient, MessageClient];
  await a.send('info', { x: '1', y: '2' });
  await a.send('info', { y: '3', z: '4' });
  await b.send('info', { w: '5' });
  const st = await b.wait('info', 'all', undefined);
  expect(cacheLines(st, true)).toEqual([`${jobs[0]}:x=1`, `${jobs[0]}:y=3`, `${jobs[0]}:z=4`, `${jobs[1]}:w=5`]);
});

test('lava-sync across 6 nodes releases every node only once the last has sent', async () => {
  const { msgs, c } = await cluster(6);
  const released: number[] = [];
  const syncs = msgs.slice(0, 5).map((m, i) => m.sync('ready').then(() => released.push(i)));
  await eventually(async () => (await messageEvents(c.cluster)).filter((e) => e.op === 'send').length === 5, 'five sends folded');
  expect(released).toEqual([]);
  await msgs[5]!.sync('ready');
  await Promise.all(syncs);
  expect(released.sort()).toEqual([0, 1, 2, 3, 4]);
  const last = (await messageEvents(c.cluster)).at(-1);
  expect(last?.released?.length).toBe(6);
});

test('wait-all of a role waits for the nodes of that role only; a role nobody has is refused', async () => {
  const { msgs, jobs } = await cluster(3);
  const [server, c1, c2] = msgs as [MessageClient, MessageClient, MessageClient];
  const clientsDone = server.wait('client-done', 'all', 'client');
  await c1.send('client-done', { rate: '10' });
  await server.send('client-done'); // the server is not a client: it changes nothing for this wait
  await c2.send('client-done', { rate: '20' });
  const st = await clientsDone;
  expect(st.senders.map((s) => s.job).sort()).toEqual([...jobs].sort());
  await expect(server.wait('x', 'all', 'monitor')).rejects.toThrow(InvalidInputError);
  await expect(server.wait('x', 'all', 'monitor')).rejects.toThrow(/no node of this cluster has role monitor/);
});

test('limits: 4 KiB of data per node per ID and 256 IDs per cluster, refused with a clear reason; bad IDs and keys at the edge', async () => {
  const { msgs } = await cluster(2);
  const [a] = msgs as [MessageClient];
  await a.send('big', { k1: 'x'.repeat(3000) });
  await expect(a.send('big', { k2: 'y'.repeat(2000) })).rejects.toThrow(new RejectedError(`node ${a.node.id.job} would hold 5008 bytes of data for message big; the limit is 4096`));
  await expect(a.send('bad/id')).rejects.toThrow(/msg: "bad\/id" is no message id: only letters, digits, "_", "." and "-"/);
  await expect(a.send('ok', { 'bad key': 'v' })).rejects.toThrow(/data/);
  await Promise.all(Array.from({ length: 255 }, (_, i) => a.send(`m${i + 1}`)));
  await expect(a.send('one-too-many')).rejects.toThrow(/holds 256 message IDs already; no new ID one-too-many/);
  // An existing ID still takes data.
  await a.send('m1', { more: 'yes' });
});

test('any node aborting answers every pending wait with abort', async () => {
  const { nodes, msgs, jobs } = await cluster(3);
  const pending = [msgs[0]!.wait('never', 'any', undefined), msgs[1]!.wait('never', 'all', undefined)];
  await nodes[2]!.report('failed', { reason: 'disk full' });
  for (const p of pending) await expect(p).rejects.toThrow(new ClusterAbortedError(`node ${jobs[2]} (client) reported failed: disk full`));
  // A wait after the abort answers abort at once.
  await expect(msgs[1]!.wait('other', 'any', undefined)).rejects.toThrow(ClusterAbortedError);
});

test('a wait past its timeout answers timed out, names who is missing, and aborts nothing', async () => {
  const { msgs, jobs, c } = await cluster(3);
  await msgs[0]!.send('half');
  await expect(msgs[0]!.wait('half', 'all', undefined, { timeoutMs: 300 })).rejects.toThrow(new TimeoutError(`timed out after 300ms: still missing: ${jobs[1]} (client), ${jobs[2]} (client)`));
  const view = await lab.workers.store.readCluster(c.cluster);
  expect(view.final).toBeUndefined();
  // The cluster goes on: the others send and the same wait now succeeds.
  await msgs[1]!.send('half');
  await msgs[2]!.send('half');
  await msgs[0]!.wait('half', 'all', undefined, { timeoutMs: 5000 });
});

test('a send repeated under the same report id is folded once', async () => {
  const { nodes, c } = await cluster(2);
  const id = nodes[0]!.newReportId('send');
  await nodes[0]!.report('send', { id, message: { msg: 'once', data: { a: '1' } } });
  await nodes[0]!.report('send', { id, message: { msg: 'once', data: { a: '1' } } });
  await eventually(() => lab.workers.store.redis.hget(lab.workers.store.keys.messages(c.cluster), 'once'), 'the send to be folded');
  await nodes[1]!.report('send', { message: { msg: 'marker' } });
  await eventually(async () => (await messageEvents(c.cluster)).some((e) => e.msg === 'marker'), 'the marker folded');
  expect((await messageEvents(c.cluster)).filter((e) => e.msg === 'once')).toHaveLength(1);
  const rec = JSON.parse((await lab.workers.store.redis.hget(lab.workers.store.keys.messages(c.cluster), 'once')) as string) as { seq: number };
  expect(rec.seq).toBe(1);
});

test('a dead node (no heartbeat for 3 intervals) aborts every pending wait, with the reason', async () => {
  const hb = 200;
  const workers = res.add(await startWorkers(lab.config, { sweepEveryMs: 100 }), (w) => w.close());
  const { nodes, msgs, jobs } = await cluster(2, hb);
  const stopA = nodes[0]!.startHeartbeat(hb);
  const stopB = nodes[1]!.startHeartbeat(hb);
  res.add(stopA, async (stop) => stop());
  const pending = msgs[0]!.wait('from-the-dead', 'any', undefined);
  await eventually(() => workers.store.redis.zscore(workers.store.keys.heartbeats, `${nodes[1]!.id.cluster} ${jobs[1]}`), 'node B to be alive');
  stopB(); // node B goes silent
  await expect(pending).rejects.toThrow(new ClusterAbortedError(`node ${jobs[1]} (client) reported abort: no heartbeat for 600ms (dead node)`));
});
