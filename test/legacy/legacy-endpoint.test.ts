import type { ConnectionConfig } from '../../src/core/config';
import { startNats, startRedis } from '../../src/services/local-servers';
import type { LocalServer, NatsServer } from '../../src/services/local-servers';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import type { SchedulerHandle } from '../../src/scheduler/start';
import { startWorkers } from '../../workers';
import { Resources, eventually } from '../helpers/servers';
import { post, startTestScheduler } from '../scheduler/scheduler-helpers';

/**
 * The legacy endpoint through plain HTTP: errors, `retry` at the long-poll
 * limit, and long polls whose client goes away. NATS runs with its
 * monitoring port, so the test can count the scheduler's subscriptions.
 */
let redis: LocalServer;
let nats: NatsServer;
let monitor: string;
const res = new Resources();
let config: ConnectionConfig;
let shortPoll: SchedulerHandle;
let longPoll: SchedulerHandle;

beforeAll(async () => {
  [redis, nats] = await Promise.all([startRedis(), startNats({ monitor: true })]);
  monitor = nats.monitorUrl!;
  config = { redisUrl: redis.url, natsUrl: nats.url, subjectPrefix: 'tlegacy', keyPrefix: 'tlegacy:' };
  res.add(await startWorkers(config), (w) => w.close());
  shortPoll = await startTestScheduler(res, config, { longPollMs: 400 });
  longPoll = await startTestScheduler(res, config, { longPollMs: 60_000 });
});
afterAll(async () => {
  await res.closeAll();
  await Promise.all([redis.dispose(), nats.dispose()]);
});

const SPEC = 'nodes:\n  box--1: { roles: [server] }\n  box--2: { roles: [client] }\n';
const JOB = 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n';

async function submit(): Promise<SubmitMessage[]> {
  const r = await post(shortPoll.url, JSON.stringify({ job: JOB, cluster_spec: SPEC }), 'application/json');
  expect(r.status).toBe(200);
  return r.body as SubmitMessage[];
}

async function ask(base: string, query: string, signal?: AbortSignal): Promise<{ status: number; text: string }> {
  const r = await fetch(`${base}/~lkp/cgi-bin/lkp-cluster-sync?${query}`, { signal });
  return { status: r.status, text: await r.text() };
}

/** Subscriptions the scheduler's NATS connection holds on `subject`, read from nats-server's /connz. */
async function subsOn(handle: SchedulerHandle, subject: string): Promise<number> {
  const cid = handle.nc.info?.client_id;
  const connz = (await (await fetch(`${monitor}/connz?subs=1&cid=${cid}`)).json()) as { connections: { cid: number; subscriptions_list?: string[] }[] };
  const conn = connz.connections.find((c) => c.cid === cid);
  return (conn?.subscriptions_list ?? []).filter((s) => s === subject).length;
}

describe('errors are one line with a 4xx', () => {
  test('an unknown job id: 404 with the reason (Compass-CI answered 500 and a stack trace)', async () => {
    for (const prefix of ['', '/scheduler']) {
      const r = await fetch(`${shortPoll.url}${prefix}/~lkp/cgi-bin/lkp-cluster-sync?job_id=cs-424242&cluster=cs-x&node=h&state=wait_ready`);
      expect([r.status, await r.text()]).toEqual([404, 'unknown job id cs-424242\n']);
    }
  });
  test.each([
    ['no job_id', 'state=wait_ready', 'query: job_id: is missing (lkp-tests sends job_id=$id, or cluster=<spec name>&node=$HOSTNAME without it)\n'],
    ['an unknown state', 'job_id=cs-1&state=reboot', 'query: state: must be one of write_state, wait_start, wait_ready, wait_finish, finished, failed, abort, roles_ip, send, wait, wait_all, sync\n'],
    ['a job id with a newline', 'job_id=cs-1%0Aevil&state=wait_ready', 'query: job_id: "cs-1\\nevil" is no job id: only letters, digits, "_", "." and "-" (no white space, "*" or ">")\n'],
  ])('%s: 400', async (_what, query, message) => {
    expect(await ask(shortPoll.url, query)).toEqual({ status: 400, text: message });
  });
});

test('a wait answers retry at the long-poll limit, then the barrier once every node is there; asking again answers at once', async () => {
  const [a, b] = await submit();
  expect(await ask(shortPoll.url, `job_id=${a!.job_id}&state=wait_start`)).toEqual({ status: 200, text: 'retry' });
  const [ra, rb] = await Promise.all([ask(shortPoll.url, `job_id=${a!.job_id}&state=wait_start`), ask(shortPoll.url, `job_id=${b!.job_id}&state=wait_start`)]);
  expect([ra.text, rb.text]).toEqual(['start', 'start']);
  // At once, not by long-polling: a wait that polled would hear nothing (the barrier was announced
  // already) and answer "retry" at the 400 ms limit, however busy the machine.
  expect(await ask(shortPoll.url, `job_id=${a!.job_id}&state=wait_start`)).toEqual({ status: 200, text: 'start' });
});

test('write_state records the node (+-joined lists arrive as spaces) and answers the state JSON; roles_ip answers its lines', async () => {
  const [a, b] = await submit();
  const w = await ask(
    shortPoll.url,
    `job_id=${a!.job_id}&cluster=cs-x&node=box--1&state=write_state&node_roles=server&ip=10.1.0.1&direct_macs=ec:f4:bb:cb:7b:92+ec:f4:bb:cb:7b:93&direct_ips=192.168.222.1+192.168.222.2`,
  );
  expect(w.status).toBe(200);
  expect(JSON.parse(w.text)).toEqual({
    [a!.job_id]: { state: '', roles: 'server', ip: '10.1.0.1', direct_ips: '192.168.222.1 192.168.222.2', direct_macs: 'ec:f4:bb:cb:7b:92 ec:f4:bb:cb:7b:93', entire_state: '' },
    [b!.job_id]: { state: '', roles: 'client', ip: '', direct_ips: '', direct_macs: '', entire_state: '' },
  });
  await ask(shortPoll.url, `job_id=${b!.job_id}&state=write_state&node_roles=client&ip=10.1.0.2&direct_macs=&direct_ips=`);
  const r = await ask(shortPoll.url, `job_id=${b!.job_id}&state=roles_ip`);
  expect(r.text).toBe(['direct_server_ips=192.168.222.1 192.168.222.2', 'server=10.1.0.1', 'direct_client_ips=', 'client=10.1.0.2'].join('\n'));
});

test("failed answers the state JSON with the node aborted, and the other node's wait answers abort", async () => {
  const [a, b] = await submit();
  const waiting = ask(longPoll.url, `job_id=${b!.job_id}&state=wait_ready`);
  await eventually(async () => (await subsOn(longPoll, `tlegacy.cluster.${a!.cluster}.barrier`)) === 1, 'the wait to subscribe');
  const f = await ask(shortPoll.url, `job_id=${a!.job_id}&state=failed`);
  expect(JSON.parse(f.text)[a!.job_id]).toMatchObject({ state: 'abort', entire_state: 'abort' });
  expect(await waiting).toEqual({ status: 200, text: 'abort' });
});

test('long polls of one cluster share one subscription, and abandoned ones leave nothing behind', async () => {
  const [a] = await submit();
  const subject = `tlegacy.cluster.${a!.cluster}.barrier`;
  expect(await subsOn(longPoll, subject)).toBe(0);
  const polls = Array.from({ length: 25 }, () => new AbortController());
  const pending = polls.map((c) => ask(longPoll.url, `job_id=${a!.job_id}&state=wait_start`, c.signal).catch((e: unknown) => e));
  await eventually(() => longPoll.shared.waiting === 25 || undefined, '25 long polls to be held');
  expect(await subsOn(longPoll, subject)).toBe(1);
  for (const c of polls) c.abort();
  await Promise.all(pending);
  await eventually(async () => (longPoll.shared.waiting === 0 && (await subsOn(longPoll, subject)) === 0) || undefined, 'the abandoned polls and their subscription to go');
});

test("held message waits are released by the other node's send, with no retry in between", async () => {
  const [a, b] = await submit();
  const waits = Array.from({ length: 5 }, () => ask(longPoll.url, `job_id=${a!.job_id}&state=wait&msg=go`));
  await eventually(() => longPoll.shared.waiting >= 5 || undefined, 'the 5 waits to be held');
  expect(await ask(longPoll.url, `job_id=${b!.job_id}&state=send&msg=go&addr=10.0.0.2`)).toEqual({ status: 200, text: 'ok' });
  expect(await Promise.all(waits)).toEqual(Array(5).fill({ status: 200, text: 'ok\naddr=10.0.0.2' }));
});

test('finished with job_id is held past the long-poll limit (never retry) and answers abort when another node fails', async () => {
  const [a, b] = await submit();
  // both through start and ready, so the client's finished waits at the finish barrier only
  await Promise.all([ask(shortPoll.url, `job_id=${a!.job_id}&state=wait_start`), ask(shortPoll.url, `job_id=${b!.job_id}&state=wait_start`)]);
  await Promise.all([ask(shortPoll.url, `job_id=${a!.job_id}&state=wait_ready`), ask(shortPoll.url, `job_id=${b!.job_id}&state=wait_ready`)]);
  let answered: { status: number; text: string } | undefined;
  const finished = ask(shortPoll.url, `job_id=${b!.job_id}&state=finished`).then((r) => (answered = r));
  await eventually(async () => (await subsOn(shortPoll, `tlegacy.cluster.${a!.cluster}.barrier`)) === 1, 'finished to subscribe');
  // a wait in another cluster is told retry at the 400 ms limit: the held finished has outlived a long poll
  const [other] = await submit();
  expect(await ask(shortPoll.url, `job_id=${other!.job_id}&state=wait_start`)).toEqual({ status: 200, text: 'retry' });
  expect(answered).toBeUndefined();
  await ask(shortPoll.url, `job_id=${a!.job_id}&state=failed`);
  expect(await finished).toEqual({ status: 200, text: 'abort' });
});
