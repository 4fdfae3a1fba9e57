import type { Redis } from 'ioredis';
import { Keys } from '../../src/core/keys';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import { localSpecFor } from '../../src/scheduler/submit-client';
import type { SchedulerHandle } from '../../src/scheduler/start';
import { fixtureJob } from '../helpers/fixtures';
import { diffSnapshots, snapshotKeys } from '../helpers/snapshot';
import { useTestServers } from '../helpers/use-test-servers';
import { TOKEN, get, post, startTestScheduler } from './scheduler-helpers';

const lab = useTestServers();
const { res } = lab;
let scheduler: SchedulerHandle;
let redis: Redis;

beforeAll(async () => {
  scheduler = await startTestScheduler(res, lab.config);
  redis = res.redis(lab.config);
});

const YAML = 'application/yaml';
const TWO_NODE_SPEC = 'nodes:\n  box--1: { roles: [server], macs: ["ec:f4:bb:cb:7b:92"] }\n  box--2: { roles: [client] }\n';

describe('POST /jobs', () => {
  test('without the bearer token, or with a wrong one: 401 and nothing changes', async () => {
    const before = await snapshotKeys(redis, lab.config.keyPrefix);
    const none = await post(scheduler.url, fixtureJob('iperf.yaml'), YAML, null);
    const wrong = await post(scheduler.url, fixtureJob('iperf.yaml'), YAML, 'not-the-token');
    expect([none.status, wrong.status]).toEqual([401, 401]);
    expect(none.body).toEqual([{ job_id: '0', message: 'missing "Authorization: Bearer TOKEN" header (the scheduler\'s CS_API_TOKEN)', job_state: 'submit', error: 'UNAUTHORIZED' }]);
    expect((wrong.body as SubmitMessage[])[0]?.message).toMatch(/^wrong bearer token/);
    expect(diffSnapshots(before, await snapshotKeys(redis, lab.config.keyPrefix))).toEqual([]);
  });

  test("a YAML fixture job with a spec from the cluster directory: every node job in Compass-CI's answer shape, on its testbox queue", async () => {
    const job = 'suite: t\ncluster: cs-vm-2p16g\nif role server:\n  netserver:\nif role client:\n  netperf:\n    test: [TCP_RR, UDP_RR]\n';
    const r = await post(scheduler.url, job, YAML);
    expect(r.status).toBe(200);
    const messages = r.body as SubmitMessage[];
    expect(messages.map((m) => [m.job_state, m.message, m.job_index, m.node_roles, m.queue, m.host])).toEqual([
      ['submit', '', 0, 'server', 'vm-2p16g-multi-node', 'vm-2p16g-multi-node--1'],
      ['submit', '', 0, 'client', 'vm-2p16g-multi-node', 'vm-2p16g-multi-node--2'],
      ['submit', '', 1, 'server', 'vm-2p16g-multi-node', 'vm-2p16g-multi-node--1'],
      ['submit', '', 1, 'client', 'vm-2p16g-multi-node', 'vm-2p16g-multi-node--2'],
    ]);
    // cluster id = the first node job's id; each expansion its own cluster
    expect(messages.map((m) => m.cluster)).toEqual([messages[0]!.job_id, messages[0]!.job_id, messages[2]!.job_id, messages[2]!.job_id]);
    const keys = new Keys(lab.config.keyPrefix);
    for (const m of messages) {
      expect(await redis.hget(keys.id2cluster, m.job_id)).toBe(m.cluster);
      expect(await redis.exists(`${keys.bullPrefix}:tb-${m.queue}:${m.job_id}`)).toBe(1);
    }
  });

  test('netperf-runtime.yaml as JSON {job, cluster_spec} with the spec inline: 28 clusters of 2 nodes', async () => {
    const r = await post(scheduler.url, JSON.stringify({ job: fixtureJob('netperf-runtime.yaml'), cluster_spec: TWO_NODE_SPEC }), 'application/json');
    expect(r.status).toBe(200);
    const messages = r.body as SubmitMessage[];
    expect(messages).toHaveLength(56);
    expect(new Set(messages.map((m) => m.cluster)).size).toBe(28);
    expect(messages.map((m) => m.job_index)).toEqual(Array.from({ length: 56 }, (_, i) => Math.floor(i / 2)));
    expect(new Set(messages.map((m) => `${m.host} ${m.node_roles} ${m.queue}`))).toEqual(new Set(['box--1 server box', 'box--2 client box']));
  });

  test('a JSON job (not the wrapper) is a job; cs-localhost runs every role on one node', async () => {
    const r = await post(scheduler.url, JSON.stringify({ suite: 't', cluster: 'cs-localhost', 'if role server': { srv: null }, 'if role client': { cli: null } }), 'application/json');
    expect(r.status).toBe(200);
    expect((r.body as SubmitMessage[]).map((m) => m.node_roles)).toEqual(['server client']);
  });

  describe('hostile input: 4xx naming what is wrong, and nothing changes', () => {
    const bomb = `a: &a ["x","x","x","x","x","x","x","x","x","x"]\n${Array.from(
      { length: 8 },
      (_, i) =>
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(',')}]`,
    ).join('\n')}\nsuite: t\n`;
    test.each([
      ['a billion-laughs alias bomb', bomb, YAML, 400, /^job: document expands to more than 100000 nodes \(an alias bomb\?\)$/],
      ['YAML that is a list, not a mapping', '- a\n- b\n', YAML, 400, /^job: document 1 is not a YAML mapping of parameters$/],
      ['YAML that is a plain string', 'hello\n', 'text/plain', 400, /^job: document 1 is not a YAML mapping of parameters$/],
      ['a second document that is not a mapping', 'suite: t\n---\n42\n', YAML, 400, /^job: document 2 is not a YAML mapping of parameters$/],
      ['YAML that does not parse', 'a: [1, 2\n', YAML, 400, /^job: not valid YAML: /],
      ['a job over 1 MiB', `suite: t\npad: "${'x'.repeat(1024 * 1024)}"\n`, YAML, 413, /^request body is over 1048576 bytes: a job may be at most 1 MiB$/],
      [
        'a spec the cluster directory does not hold',
        'cluster: no-such-spec\nif role server:\n  srv:\n',
        YAML,
        400,
        /^job: cluster: cluster spec "no-such-spec" is not in the scheduler's cluster directory$/,
      ],
      ['an empty body', '', YAML, 400, /is empty/],
      ['a body of another type', 'suite: t\n', 'application/octet-stream', 415, /application\/yaml/],
      ['an inline spec that is a number', JSON.stringify({ job: 'suite: t\n', cluster_spec: 5 }), 'application/json', 400, /^request body: cluster_spec: must be YAML text or a mapping$/],
    ])('%s', async (_what, body, type, status, message) => {
      const before = await snapshotKeys(redis, lab.config.keyPrefix);
      const r = await post(scheduler.url, body, type);
      expect(r.status).toBe(status);
      const answer = r.body as SubmitMessage[];
      expect(answer).toHaveLength(1);
      expect(answer[0]).toMatchObject({ job_id: '0', job_state: 'submit' });
      expect(answer[0]!.message).toMatch(message);
      expect(diffSnapshots(before, await snapshotKeys(redis, lab.config.keyPrefix))).toEqual([]);
    });
  });
});

describe('Compass-CI jobs and specs', () => {
  test("a job's own cluster_spec is used instead of the file named by cluster:; what the split ignored is in each node job's message", async () => {
    const job = 'suite: t\ncluster: cs-not-in-the-dir\nif role server:\n  netserver:\nif role monitor:\n  mon:\ncluster_spec:\n  nodes:\n    own--1: { roles: [server], bmc_ip: 10.0.0.1 }\n';
    const r = await post(scheduler.url, job, YAML);
    expect(r.status).toBe(200);
    const messages = r.body as SubmitMessage[];
    expect(messages.map((m) => [m.host, m.spec, m.node_roles])).toEqual([['own--1', 'cs-not-in-the-dir', 'server']]);
    expect(messages[0]!.message).toBe(
      'job: cluster_spec: host own--1: ignored key bmc_ip (not used by cluster-sync); job: role monitor of the job is on no host of cluster spec cs-not-in-the-dir: ignored',
    );
  });

  test('submit --cluster-dir reads no spec file for a job that carries its own cluster_spec', () => {
    const job = 'cluster: cs-not-in-the-dir\nif role server:\n  netserver:\ncluster_spec:\n  nodes:\n    own--1: { roles: [server] }\n';
    expect(localSpecFor(job, 'job.yaml', '/nonexistent')).toBeUndefined();
    expect(() => localSpecFor('cluster: cs-not-in-the-dir\n', 'job.yaml', '/nonexistent')).toThrow(/cluster spec cs-not-in-the-dir not found in \/nonexistent/);
  });
});

describe('GET /clusters/:id', () => {
  test('per node roles, ip and state; entire_state; the pending barrier, with no deadline before admission', async () => {
    const r = await post(scheduler.url, JSON.stringify({ job: 'suite: t\ncluster_timeout: 1h\nif role server:\n  srv:\nif role client:\n  cli:\n', cluster_spec: TWO_NODE_SPEC }), 'application/json');
    const [first, second] = r.body as SubmitMessage[];
    const c = await get(`${scheduler.url}/clusters/${first!.cluster}`);
    expect(c.status).toBe(200);
    const view = c.json() as { created: number; pending: { barrier: string; deadline: number | null }; [k: string]: unknown };
    expect(view).toMatchObject({
      id: first!.cluster,
      spec: 'inline',
      entire_state: '',
      final: null,
      nodes: [
        { job: first!.job_id, roles: 'server', ip: '', state: '', direct_ips: '192.168.222.1', direct_macs: 'ec:f4:bb:cb:7b:92' },
        { job: second!.job_id, roles: 'client', ip: '', state: '', direct_ips: '', direct_macs: '' },
      ],
    });
    expect(view.pending.barrier).toBe('start');
    // Barrier deadlines count from admission (DESIGN §9): no machine took part yet, so start has none
    // (test/admission/admission-take.test.ts checks the deadline once the cluster is admitted).
    expect(view.pending.deadline).toBeNull();
  });

  test('an unknown cluster is a 404 naming it', async () => {
    const c = await get(`${scheduler.url}/clusters/cs-999999`);
    expect(c.status).toBe(404);
    expect(c.json()).toEqual({ error: 'NOT_FOUND', message: 'unknown cluster cs-999999' });
  });
});

test('the token is never in an answer', async () => {
  const r = await post(scheduler.url, JSON.stringify({ job: 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n', cluster_spec: TWO_NODE_SPEC }), 'application/json');
  const [m] = r.body as SubmitMessage[];
  const token = await redis.hget(new Keys(lab.config.keyPrefix).meta(m!.cluster), 'token');
  expect(token).toBeTruthy();
  expect(r.text).not.toContain(token);
  expect((await get(`${scheduler.url}/clusters/${m!.cluster}`)).text).not.toContain(token);
  expect(r.text).not.toContain(TOKEN);
});

test('a scheduler serves once it is started: Redis up but slow to answer its new connection, the first submit is not refused 503', async () => {
  // Redis holds every client's commands, a new connection's ready check too, for a second: a scheduler
  // started now must not take that for "Redis is not reachable" (it once listened before its connection was ready).
  await redis.call('CLIENT', 'PAUSE', '1000', 'ALL');
  const started = await startTestScheduler(res, lab.config);
  const r = await post(started.url, 'suite: t\ncluster: cs-localhost\nif role server:\n  srv:\n', YAML);
  expect(r.text).not.toContain('not reachable');
  expect(r.status).toBe(200);
});
