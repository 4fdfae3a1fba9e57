import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, ErrorCode as NatsErrorCode, nkeyAuthenticator } from 'nats';
import type { NatsConnection, NatsError } from 'nats';
import { createUser } from 'nkeys.js';
import { connectNats, decodeText, encodeJson } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import type { ConnectionConfig } from '../../src/core/config';
import { MessageClient } from '../../src/client/message-client';
import { startNats, startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';
import type { TakeReply } from '../../src/bus/queue-messages';
import { startWorkers } from '../../workers';
import type { WorkersHandle } from '../../workers';
import { note } from '../faults/summary';
import { nodesJob, submitInline } from '../helpers/cluster';
import { WAIT_MS } from '../helpers/processes';
import { serverLogLine, violationOf, writeLab } from '../helpers/nats-lab';
import type { Lab } from '../helpers/nats-lab';
import { Resources, eventually } from '../helpers/servers';

/**
 * The NATS permissions `cluster-sync nats-config` writes, run as written by
 * a real nats-server: the workers connect as `worker`, each node as the user
 * of its testbox. A node can do its whole life, and nothing else: it cannot
 * publish a barrier answer or an event, read reports (they carry the
 * cluster's token), events or any reply but its own (take replies carry node
 * jobs and tokens), nor take another testbox's jobs. Every refusal is also
 * shown as the nats-server log line that records it.
 */
const TESTBOXES = ['node', 'other'];

let redis: LocalServer;
let nats: LocalServer;
const res = new Resources();
let base: ConnectionConfig;
let lab: Lab;
let workers: WorkersHandle;
let tmp: string;
const subjects = new Subjects('cs');

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cs-nats-secure-'));
  lab = await writeLab(path.join(tmp, 'lab'), TESTBOXES);
  [redis, nats] = await Promise.all([startRedis(), startNats({ config: lab.authConf })]);
  base = { redisUrl: redis.url, natsUrl: nats.url, subjectPrefix: 'cs', keyPrefix: 'sec:' };
  workers = res.add(await startWorkers(lab.config(base, 'worker')), (w) => w.close());
});
afterAll(async () => {
  await res.closeAll();
  await Promise.all([redis?.dispose(), nats?.dispose()]);
  rmSync(tmp, { recursive: true, force: true });
});

/** A connection as `user`, with the problems its connection reports collected. */
async function as(user: string, problems: string[] = []): Promise<NatsConnection> {
  const nc = await connectNats(lab.config(base, user), `test-${user}`, {}, (line) => problems.push(line)).catch((err: unknown) => {
    // Say what the server saw of it, to tell a refusal from a slow machine.
    const log = readFileSync(path.join(nats.dir, 'nats.log'), 'utf8').split('\n').slice(-15).join('\n');
    throw new Error(`connecting as ${user}: ${String(err)}; the end of nats.log:\n${log}`);
  });
  return res.add(nc, (n) => n.close());
}

/** The next permissions error the server sends this connection: "publish cs.cluster.x.barrier". */
async function nextPermissionError(nc: NatsConnection): Promise<string> {
  for await (const s of nc.status()) {
    if (s.type === 'error' && s.permissionContext) return `${s.permissionContext.operation} ${s.permissionContext.subject}`;
  }
  throw new Error('connection closed without a permissions error');
}

/** Subscribes to `subject` and returns the error the server ends the subscription with. */
async function subscriptionError(nc: NatsConnection, subject: string): Promise<NatsError | undefined> {
  const sub = nc.subscribe(subject);
  try {
    for await (const _m of sub) {
      /* no message can come */
    }
  } catch (e) {
    return e as NatsError;
  }
  return undefined;
}

/** A cluster with one node on testbox `other` and one on `node`. */
const twoTestboxes = {
  job: 'suite: t\ncluster: cs-test\nif role server:\n  srv:\nif role client:\n  cli:\n',
  spec: 'nodes:\n  other--1: { roles: [server] }\n  node--1: { roles: [client] }\n',
};

test('a node user does its whole life: reports, barrier answers, roles_ip', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, base, job, spec);
  const nodes = await Promise.all(
    cluster!.jobs.map(async (j) => {
      const c = res.add(new NodeClient(await as('node-node'), subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close());
      await c.start();
      return c;
    }),
  );
  for (const [kind, barrier] of [
    ['wait_start', 'start'],
    ['wait_ready', 'ready'],
    ['finished', 'finish'],
  ] as const) {
    expect((await Promise.all(nodes.map((n) => n.wait(kind)))).map((a) => a.result)).toEqual([barrier, barrier]);
  }
  expect((await nodes[0]!.rolesIp()).length).toBeGreaterThan(0);
  note('NATS user "node-node" (cluster-sync nats-config): its own life', 'reports accepted, start/ready/finish answers heard, roles_ip answered');
});

test('a node user exchanges named messages (lava-send / lava-wait): it may read the message states', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, base, job, spec);
  const group = Object.fromEntries(cluster!.jobs.map((j) => [j.job_id, j.node_roles]));
  const problems: string[] = [];
  const msgs = await Promise.all(
    cluster!.jobs.map(async (j) => {
      const node = res.add(new NodeClient(await as('node-node', problems), subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close());
      return res.add(new MessageClient(node, group), (m) => m.close());
    }),
  );
  const waiting = msgs[1]!.wait('server-ready', 'any', undefined, { timeoutMs: 10_000 });
  await msgs[0]!.send('server-ready', { ip: '10.0.0.1' }, { timeoutMs: 10_000 });
  expect((await waiting).senders.map((s) => s.data)).toEqual([{ ip: '10.0.0.1' }]);
  expect(problems).toEqual([]);
});

test('a node user cannot publish a barrier answer or an event: the server refuses and no node hears it', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, base, job, spec);
  const j = cluster!.jobs[1]!;
  const victim = res.add(new NodeClient(await as('node-node'), subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close());
  await victim.start();
  const heard: string[] = [];
  const ops = await as('ops');
  ops.subscribe(subjects.event(cluster!.cluster), { callback: (_e, m) => heard.push(decodeText(m.data)) });
  await ops.flush();

  const problems: string[] = [];
  const attacker = await as('node-node', problems);
  for (const subject of [subjects.barrier(cluster!.cluster), subjects.event(cluster!.cluster)]) {
    const refused = nextPermissionError(attacker);
    attacker.publish(subject, encodeJson({ v: 1, cluster: cluster!.cluster, barrier: 'start', result: 'abort', at: Date.now(), reason: 'forged' }));
    const message = await refused;
    expect(message).toBe(`publish ${subject}`);
    const line = await serverLogLine(nats, violationOf('Publish', subject));
    note(`NATS user "node-node" publishes a forged ${subject.split('.').pop()} message`, `refused by the server; no node heard it; nats-server: ${line}`);
  }
  // The refusal is told to the process (its log), not swallowed.
  await eventually(() => problems.length >= 2, "both refusals told to the connection's problem sink");
  expect(problems[0]).toMatch(/NATS server refused publish to "cs\.cluster\.[^"]+\.barrier": permissions violation/);
  // The server handled the forged publishes before it sent the errors; a round trip on each listener shows nothing arrived.
  await victim.nc.flush();
  await ops.flush();
  expect(victim.aborted).toBeUndefined();
  expect(heard).toEqual([]);
});

test.each([
  ['reports (which carry the token)', subjects.allReports],
  ['events', subjects.allEvents],
  ['everything', '>'],
  ['every reply (take replies carry node jobs and tokens)', '_INBOX.>'],
  ["another testbox's replies", '_INBOX_node-other.>'],
  ['the take requests of its own testbox', subjects.take('node')],
])('a node user cannot read %s', async (what, subject) => {
  const nc = await as('node-node');
  const err = await subscriptionError(nc, subject);
  expect(err?.code).toBe(NatsErrorCode.PermissionsViolation);
  expect(err?.message).toMatch(/Permissions Violation for Subscription to/);
  const line = await serverLogLine(nats, violationOf('Subscription', subject));
  note(`NATS user "node-node" subscribes to ${what} (${subject})`, `refused by the server; nats-server: ${line}`);
});

test("a node user cannot read another node's take reply: it hears nothing while the other node gets its job", async () => {
  const [cluster] = await submitInline(res, base, twoTestboxes.job, twoTestboxes.spec);
  const victimJob = cluster!.jobs.find((j) => j.testbox === 'other')!;
  const attacker = await as('node-node');
  const heard: string[] = [];
  // Allowed: its own inbox prefix. Refused: nats.js' default `_INBOX` and the victim's prefix.
  attacker.subscribe('_INBOX_node-node.>', { callback: (_e, m) => heard.push(m.subject) });
  const refusals = await Promise.all(['_INBOX.>', '_INBOX_node-other.>'].map((s) => subscriptionError(attacker, s)));
  expect(refusals.map((e) => e?.code)).toEqual([NatsErrorCode.PermissionsViolation, NatsErrorCode.PermissionsViolation]);

  const victim = await as('node-other');
  const reply = JSON.parse(decodeText((await victim.request(subjects.take('other'), encodeJson({ v: 1, agent: 'victim' }), { timeout: WAIT_MS })).data)) as TakeReply;
  expect(reply.ok && reply.job?.job_id).toBe(victimJob.job_id);
  await attacker.flush();
  expect(heard).toEqual([]);
  note(
    'NATS user "node-node" listens for replies while testbox "other" takes its node job',
    `"_INBOX.>" and "_INBOX_node-other.>" refused; on its own prefix it heard nothing; the victim got ${victimJob.job_id}`,
  );
});

test("a node user cannot take another testbox's job: the take is refused and the job stays for its testbox", async () => {
  const [cluster] = await submitInline(res, base, twoTestboxes.job, twoTestboxes.spec);
  const otherJob = cluster!.jobs.find((j) => j.testbox === 'other')!;
  const attacker = await as('node-node');
  const refused = nextPermissionError(attacker);
  const taken = attacker.request(subjects.take('other'), encodeJson({ v: 1, agent: 'attacker' }), { timeout: 2000 }).catch((e: unknown) => e as NatsError);
  expect(await refused).toBe(`publish ${subjects.take('other')}`);
  const err = await taken;
  expect(err).toBeInstanceOf(Error);
  const line = await serverLogLine(nats, violationOf('Publish', subjects.take('other')));

  const owner = await as('node-other');
  const reply = JSON.parse(decodeText((await owner.request(subjects.take('other'), encodeJson({ v: 1, agent: 'owner' }), { timeout: WAIT_MS })).data)) as TakeReply;
  expect(reply.ok && reply.job?.job_id).toBe(otherJob.job_id);
  note('NATS user "node-node" sends a take on testbox "other"', `refused by the server (no reply); "other" then took ${otherJob.job_id}; nats-server: ${line}`);
});

test('the ops user reads events and barrier answers and can publish nothing', async () => {
  const ops = await as('ops');
  const refused = nextPermissionError(ops);
  ops.publish(subjects.report('cs-1'), encodeJson({}));
  expect(await refused).toBe(`publish ${subjects.report('cs-1')}`);
  const line = await serverLogLine(nats, violationOf('Publish', subjects.report('cs-1')));
  const job = 'suite: t\ncluster: cs-test\nif role server:\n  srv:\n';
  const spec = 'nodes:\n  node--1: { roles: [server] }\n';
  const heard: string[] = [];
  ops.subscribe(subjects.allEvents, { callback: (_e, m) => heard.push(decodeText(m.data)) });
  ops.subscribe('cs.cluster.*.barrier', { callback: (_e, m) => heard.push(decodeText(m.data)) });
  await ops.flush();
  const [cluster] = await submitInline(res, base, job, spec);
  const [node] = await Promise.all(
    cluster!.jobs.map(async (j) => {
      const c = res.add(new NodeClient(await as('node-node'), subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close());
      await c.start();
      return c;
    }),
  );
  await node!.wait('wait_start');
  await eventually(() => heard.some((h) => h.includes('"barrier":"start"')), 'the ops user to hear the start answer');
  note('NATS user "ops" publishes a report', `refused by the server; it hears events and barrier answers; nats-server: ${line}`);
});

test('without a key, or with a key the server does not know, nobody connects', async () => {
  const stranger = createUser();
  for (const [what, opts] of [
    ['no credentials', {}],
    ['an nkey not in auth.conf', { authenticator: nkeyAuthenticator(stranger.getSeed()) }],
  ] as const) {
    const err = (await connect({ servers: nats.url, reconnect: false, ...opts }).catch((e: unknown) => e)) as NatsError;
    expect(err.code).toBe(NatsErrorCode.AuthorizationViolation);
    note(`NATS connection with ${what}`, `refused: ${err.code}`);
  }
});

test('the forged abort changed nothing in Redis: no cluster was aborted', async () => {
  const open = await workers.store.openClusters();
  const views = await Promise.all(open.map((c) => workers.store.readCluster(c)));
  expect(views.every((v) => v.final !== 'abort')).toBe(true);
});
