import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, ErrorCode as NatsErrorCode } from 'nats';
import type { NatsConnection, NatsError } from 'nats';
import { connectNats, decodeText, encodeJson } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import type { ConnectionConfig } from '../../src/core/config';
import { startNats, startRedis } from '../../src/services/local-servers';
import type { LocalServer } from '../../src/services/local-servers';
import { startWorkers } from '../../workers';
import type { WorkersHandle } from '../../workers';
import { note } from '../faults/summary';
import { nodesJob, submitInline } from '../helpers/cluster';
import { ROOT } from '../helpers/processes';
import { Resources, eventually } from '../helpers/servers';

/**
 * The NATS permissions of examples/nats/secure.conf, run as they are: the
 * workers connect as `worker`, nodes as `node`. A node can do its whole
 * life, and nothing else: it cannot publish a barrier answer or an event,
 * nor read reports (they carry the cluster's token) or events. Without the
 * right password nobody connects.
 */
const CONF = path.join(ROOT, 'examples/nats/secure.conf');
const PASS = { worker: 'w-secret-1', node: 'n-secret-2', scheduler: 's-secret-3', ops: 'o-secret-4' };

let redis: LocalServer;
let nats: LocalServer;
const res = new Resources();
let config: ConnectionConfig;
let workers: WorkersHandle;
let tmp: string;

/**
 * The example with its `$CS_NATS_*_PASS` references replaced by this test's
 * passwords (jest cannot hand nats-server an environment); the permission
 * blocks run exactly as written.
 */
function configWithPasswords(dir: string): string {
  let text = readFileSync(CONF, 'utf8');
  for (const [user, pass] of Object.entries(PASS)) {
    const ref = `$CS_NATS_${user.toUpperCase()}_PASS`;
    expect(text).toContain(ref);
    text = text.replaceAll(ref, JSON.stringify(pass));
  }
  const file = path.join(dir, 'secure.conf');
  writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cs-nats-secure-'));
  [redis, nats] = await Promise.all([startRedis(), startNats({ config: configWithPasswords(tmp) })]);
  // The file's subjects are under the default prefix "cs".
  config = { redisUrl: redis.url, natsUrl: nats.url, subjectPrefix: 'cs', keyPrefix: 'sec:' };
  workers = res.add(await startWorkers({ ...config, natsUser: 'worker', natsPass: PASS.worker }), (w) => w.close());
});
afterAll(async () => {
  await res.closeAll();
  await Promise.all([redis?.dispose(), nats?.dispose()]);
  rmSync(tmp, { recursive: true, force: true });
});

async function as(user: keyof typeof PASS): Promise<NatsConnection> {
  const nc = await connectNats({ ...config, natsUser: user, natsPass: PASS[user] }, `test-${user}`);
  return res.add(nc, (n) => n.close());
}

/** The next permissions error the server sends this connection: "publish cs.cluster.x.barrier". */
async function nextPermissionError(nc: NatsConnection): Promise<string> {
  for await (const s of nc.status()) {
    if (s.type === 'error' && s.permissionContext) return `${s.permissionContext.operation} ${s.permissionContext.subject}`;
  }
  throw new Error('connection closed without a permissions error');
}

test('a node user does its whole life: reports, barrier answers, roles_ip', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, config, job, spec);
  const subjects = new Subjects('cs');
  const nodes = await Promise.all(
    cluster!.jobs.map(async (j) => {
      const c = res.add(new NodeClient(await as('node'), subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close());
      await c.start();
      return c;
    }),
  );
  for (const [kind, barrier] of [['wait_start', 'start'], ['wait_ready', 'ready'], ['finished', 'finish']] as const) {
    expect((await Promise.all(nodes.map((n) => n.wait(kind)))).map((a) => a.result)).toEqual([barrier, barrier]);
  }
  expect((await nodes[0]!.rolesIp()).length).toBeGreaterThan(0);
  note('NATS user "node" (examples/nats/secure.conf): its own life', 'reports accepted, start/ready/finish answers heard, roles_ip answered');
});

test('a node user cannot publish a barrier answer or an event: the server refuses and no node hears it', async () => {
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, config, job, spec);
  const subjects = new Subjects('cs');
  const j = cluster!.jobs[1]!;
  const victim = res.add(new NodeClient(await as('node'), subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close());
  await victim.start();
  const heard: string[] = [];
  const ops = await as('ops');
  ops.subscribe(subjects.event(cluster!.cluster), { callback: (_e, m) => heard.push(decodeText(m.data)) });
  await ops.flush();

  const attacker = await as('node');
  for (const subject of [subjects.barrier(cluster!.cluster), subjects.event(cluster!.cluster)]) {
    const refused = nextPermissionError(attacker);
    attacker.publish(subject, encodeJson({ v: 1, cluster: cluster!.cluster, barrier: 'start', result: 'abort', at: Date.now(), reason: 'forged' }));
    const message = await refused;
    expect(message).toBe(`publish ${subject}`);
    note(`NATS user "node" publishes a forged ${subject.split('.').pop()} message`, `refused by the server (permissions violation: ${message}); no node heard it`);
  }
  // The server handled the forged publishes before it sent the errors; a round trip on each listener shows nothing arrived.
  await victim.nc.flush();
  await ops.flush();
  expect(victim.aborted).toBeUndefined();
  expect(heard).toEqual([]);
});

test.each([
  ['reports (which carry the token)', (s: Subjects) => s.allReports],
  ['events', (s: Subjects) => s.allEvents],
  ['everything', () => '>'],
])('a node user cannot read %s', async (what, subjectOf) => {
  const nc = await as('node');
  const subject = subjectOf(new Subjects('cs'));
  const sub = nc.subscribe(subject);
  const err = await (async () => {
    try {
      for await (const _m of sub) {
        /* no message can come */
      }
    } catch (e) {
      return e as NatsError;
    }
    return undefined;
  })();
  expect(err?.code).toBe(NatsErrorCode.PermissionsViolation);
  expect(err?.message).toMatch(/Permissions Violation for Subscription to/);
  note(`NATS user "node" subscribes to ${what} (${subject})`, `refused by the server: "${err?.message ?? ''}"`);
});

test('without a password, or with a wrong one, nobody connects', async () => {
  for (const [what, opts] of [
    ['no credentials', {}],
    ['wrong password for "worker"', { user: 'worker', pass: 'guess' }],
    ['the node password for "worker"', { user: 'worker', pass: PASS.node }],
  ] as const) {
    const err = (await connect({ servers: nats.url, reconnect: false, ...opts }).catch((e: unknown) => e)) as NatsError;
    expect(err.code).toBe(NatsErrorCode.AuthorizationViolation);
    note(`NATS connection with ${what}`, `refused: ${err.code}`);
  }
});

test('the forged abort changed nothing in Redis: its cluster is still open, not aborted', async () => {
  await eventually(async () => (await workers.store.openClusters()).length === 1, 'the forged-abort cluster to stay open (only it is)');
});
