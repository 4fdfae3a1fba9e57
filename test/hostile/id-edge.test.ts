import { Writable } from 'node:stream';
import pino from 'pino';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { decodeText, encodeJson } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import type { ConnectionConfig } from '../../src/core/config';
import { ID_MAX } from '../../src/core/ids';
import { registerOpsRoutes } from '../../src/ops/routes';
import type { SchedulerHandle } from '../../src/scheduler/start';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import { startNats, startRedis } from '../../src/services/local-servers';
import type { LocalServer, NatsServer } from '../../src/services/local-servers';
import { startWorkers } from '../../workers';
import { Resources } from '../helpers/servers';
import { post, startTestScheduler } from '../scheduler/scheduler-helpers';

/**
 * Issue 23, item 1: every identifier from outside is checked at the edge by
 * one rule (src/core/ids.ts). Each endpoint is sent an over-long id and
 * wildcard-bearing ids: each answers 400 naming the rule, and no NATS
 * connection of any process (scheduler, workers) was closed: the scheduler
 * used to subscribe to a 5,000-character subject for `/ops/events?cluster=`,
 * and nats-server closed its connection (`maximum control line exceeded`).
 */
let redis: LocalServer;
let nats: NatsServer;
let scheduler: SchedulerHandle;
let config: ConnectionConfig;
let cluster: SubmitMessage[];
const res = new Resources();
const logLines: { level: number; msg: string }[] = [];

beforeAll(async () => {
  [redis, nats] = await Promise.all([startRedis(), startNats({ monitor: true })]);
  config = { redisUrl: redis.url, natsUrl: nats.url, subjectPrefix: 'tids', keyPrefix: 'tids:' };
  res.add(await startWorkers(config, { sweepEveryMs: 3_600_000 }), (w) => w.close());
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    }),
  );
  scheduler = await startTestScheduler(res, config, { routes: [registerOpsRoutes], logger, longPollMs: 600_000 });
  const r = await post(
    scheduler.url,
    JSON.stringify({ job: 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n', cluster_spec: 'nodes:\n  box--1: { roles: [server] }\n  box--2: { roles: [client] }\n' }),
    'application/json',
  );
  expect(r.status).toBe(200);
  cluster = r.body as SubmitMessage[];
});
afterAll(async () => {
  await res.closeAll();
  await Promise.all([redis?.dispose(), nats?.dispose()]);
});

interface Connz {
  connections: { cid: number; name?: string; reason?: string }[];
}
async function connz(state: 'open' | 'closed'): Promise<Connz['connections']> {
  return ((await (await fetch(`${nats.monitorUrl!}/connz?state=${state}&limit=1000`)).json()) as Connz).connections;
}

const LONG = 'a'.repeat(5000);
const LEGACY = '/~lkp/cgi-bin/lkp-cluster-sync';
/** Over-long, and the ways a wildcard or separator could reach a subject or key. */
const BAD_IDS: [string, string, RegExp][] = [
  ['over-long', LONG, new RegExp(`is 5000 characters long; a [a-z ]+ is at most ${ID_MAX}`)],
  ['"*"', '*', /only letters, digits, "_", "\." and "-"/],
  ['">"', '>', /only letters, digits, "_", "\." and "-"/],
  ['"a.*"', 'a.*', /only letters, digits, "_", "\." and "-"/],
  ['a space', 'a b', /only letters, digits, "_", "\." and "-"/],
];

const job = (): string => cluster[0]!.job_id;
const ENDPOINTS: [string, (id: string) => string][] = [
  ['GET /clusters/:id', (id) => `/clusters/${encodeURIComponent(id)}`],
  ['GET /ops/clusters/:id', (id) => `/ops/clusters/${encodeURIComponent(id)}`],
  ['GET /ops/events?cluster=', (id) => `/ops/events?cluster=${encodeURIComponent(id)}`],
  ['legacy job_id=', (id) => `${LEGACY}?job_id=${encodeURIComponent(id)}&state=wait_start`],
  ['legacy cluster= (spec name, no job_id)', (id) => `${LEGACY}?cluster=${encodeURIComponent(id)}&node=box--1&state=wait_start`],
  ['legacy node= (host, no job_id)', (id) => `${LEGACY}?cluster=spec&node=${encodeURIComponent(id)}&state=wait_start`],
  ['legacy msg= (message id)', (id) => `${LEGACY}?job_id=${job()}&state=wait&msg=${encodeURIComponent(id)}`],
  ['legacy send data key', (id) => `${LEGACY}?job_id=${job()}&state=send&msg=m&${encodeURIComponent(id)}=v`],
];

describe('every endpoint refuses a bad id with 400 and no NATS connection closes', () => {
  let before: Connz['connections'];
  beforeAll(async () => {
    before = await connz('open');
    expect(before.length).toBeGreaterThan(0);
  });

  for (const [endpoint, url] of ENDPOINTS) {
    test.each(BAD_IDS)(`${endpoint}: %s`, async (_what, id, message) => {
      const r = await fetch(`${scheduler.url}${url(id)}`);
      const text = await r.text();
      // The JSON routes answer {error, message} or {error}; the legacy endpoint one plain line.
      const body = text.startsWith('{') ? ((j: { error: string; message?: string }) => j.message ?? j.error)(JSON.parse(text) as { error: string; message?: string }) : text;
      expect(r.status).toBe(400);
      expect(body).toMatch(message);
    });
  }

  test('a NATS report whose cluster or job id breaks the rule is refused by the bridge, naming the field', async () => {
    const nc: NatsConnection = res.add(await connect({ servers: nats.url }), (n) => n.close());
    const subjects = new Subjects(config.subjectPrefix);
    for (const [field, value] of [
      ['cluster', LONG],
      ['job', '*'],
      ['cluster', 'a.b'],
    ] as const) {
      const report = { v: 1, id: 'r-0000000001', cluster: cluster[0]!.cluster, job: job(), state: 'wait_start', at: Date.now(), token: 'x', [field]: value };
      const reply = JSON.parse(decodeText((await nc.request(subjects.report(cluster[0]!.cluster), encodeJson(report), { timeout: 10_000 })).data)) as { ok: boolean; reason?: string };
      expect(reply.ok).toBe(false);
      expect(reply.reason).toMatch(new RegExp(`^${field}: `));
    }
    // The subject builder itself refuses such ids: no process can build the subject.
    expect(() => subjects.barrier(LONG)).toThrow(/cluster id: is 5000 characters long/);
    expect(() => subjects.take('a*')).toThrow(/is no testbox/);
  });

  afterAll(async () => {
    const after = new Set((await connz('open')).map((c) => c.cid));
    const gone = before.filter((c) => !after.has(c.cid));
    const closed = (await connz('closed')).filter((c) => before.some((b) => b.cid === c.cid));
    expect({ gone, closed }).toEqual({ gone: [], closed: [] });
  });
});

describe('Last-Event-ID on /ops/events', () => {
  async function open(headers: Record<string, string>): Promise<{ status: number; first?: string; body?: string }> {
    const ctrl = new AbortController();
    const r = await fetch(`${scheduler.url}/ops/events?cluster=${cluster[0]!.cluster}`, { headers, signal: ctrl.signal });
    if (r.status !== 200) return { status: r.status, body: await r.text() };
    const reader = r.body!.getReader();
    let buf = '';
    try {
      while (!/^data: /m.test(buf)) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += new TextDecoder().decode(value);
      }
    } finally {
      ctrl.abort();
    }
    return { status: 200, first: /^data: (.*)$/m.exec(buf)?.[1] };
  }

  test.each([
    ['not a stream id', 'garbage'],
    ['numbers past what a stream id holds', '99999999999999999999-0'],
    ['over-long', LONG],
  ])('%s: 400 naming the header', async (_what, id) => {
    const r = await open({ 'last-event-id': id });
    expect(r.status).toBe(400);
    expect(r.body).toMatch(/Last-Event-ID: .* is no event id/);
  });

  test('an id past the end of the stream replays it from the start, with no warning in the log', async () => {
    const warnBefore = logLines.filter((l) => l.level >= 40).length;
    const r = await open({ 'last-event-id': '9999999999999-5' });
    expect(r.status).toBe(200);
    // The cluster's first event is its `submitted`: the whole stream was replayed.
    expect(JSON.parse(r.first!)).toMatchObject({ type: 'submitted', cluster: cluster[0]!.cluster });
    expect(logLines.filter((l) => l.level >= 40).slice(warnBefore)).toEqual([]);
    expect(logLines.some((l) => /past the end of the event stream: replaying it from the start/.test(l.msg))).toBe(true);
  });
});
