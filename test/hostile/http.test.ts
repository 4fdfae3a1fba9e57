import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ConnectionConfig } from '../../src/core/config';
import { Keys } from '../../src/core/keys';
import { ClusterStore } from '../../src/cluster/store';
import { REPORTS_QUEUE } from '../../src/queue/queues';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import type { SchedulerHandle } from '../../src/scheduler/start';
import { startNats, startRedis } from '../../src/services/local-servers';
import type { LocalServer, NatsServer } from '../../src/services/local-servers';
import { startWorkers } from '../../workers';
import { note } from '../faults/summary';
import { Resources, eventually } from '../helpers/servers';
import { diffSnapshots, snapshotKeys } from '../helpers/snapshot';
import { TOKEN, post, startTestScheduler } from '../scheduler/scheduler-helpers';

/**
 * Hostile HTTP: the legacy lkp endpoint with missing and huge parameters and
 * thousands of long polls abandoned at once, and the submit API with every
 * kind of wrong Authorization header. Each is refused (or cleaned up) and
 * no Redis key changes. NATS runs with its monitoring port so the test can
 * count the scheduler's subscriptions.
 */
let redis: LocalServer;
let nats: NatsServer;
let monitor: string;

beforeAll(async () => {
  [redis, nats] = await Promise.all([startRedis(), startNats({ monitor: true })]);
  monitor = nats.monitorUrl!;
});
afterAll(async () => {
  await Promise.all([redis?.dispose(), nats?.dispose()]);
});

/**
 * Workers and a scheduler of one describe block, on their own key and
 * subject prefix: what one block leaves in flight (the reports of 2,000
 * polls still being folded) cannot show up in another block's snapshots.
 */
interface Stack {
  config: ConnectionConfig;
  scheduler: SchedulerHandle;
  client: Redis;
  res: Resources;
}
function useStack(name: string): Stack {
  const stack = { res: new Resources() } as Stack;
  beforeAll(async () => {
    stack.config = { redisUrl: redis.url, natsUrl: nats.url, subjectPrefix: `thttp-${name}`, keyPrefix: `thttp-${name}:` };
    stack.res.add(await startWorkers(stack.config, { sweepEveryMs: 3_600_000 }), (w) => w.close());
    stack.scheduler = await startTestScheduler(stack.res, stack.config, { longPollMs: 600_000 });
    stack.client = stack.res.redis(stack.config);
  });
  afterAll(async () => {
    await stack.res.closeAll();
  });
  return stack;
}

const SPEC = 'nodes:\n  box--1: { roles: [server] }\n  box--2: { roles: [client] }\n';
const JOB = 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n';
const LEGACY = '/~lkp/cgi-bin/lkp-cluster-sync';

async function submit(stack: Stack): Promise<SubmitMessage[]> {
  const r = await post(stack.scheduler.url, JSON.stringify({ job: JOB, cluster_spec: SPEC }), 'application/json');
  expect(r.status).toBe(200);
  return r.body as SubmitMessage[];
}

/** Cluster keys only: BullMQ's own queues log and lock on their own. */
const snap = (stack: Stack) => snapshotKeys(stack.client, stack.config.keyPrefix, { ignore: /cs-bull:cs-(timers|reports):|:stalled-check$/ });

/** Subscriptions of every connection of this NATS server on `subject`, from its /connz. */
async function subsOn(subject: string): Promise<number> {
  const connz = (await (await fetch(`${monitor}/connz?subs=1`)).json()) as { connections: { subscriptions_list?: string[] }[] };
  return connz.connections.flatMap((c) => c.subscriptions_list ?? []).filter((s) => s === subject).length;
}

describe('legacy endpoint', () => {
  const stack = useStack('legacy');
  test.each([
    ['no parameters at all', '', 400, /^query: job_id: is missing/],
    ['a state but no job_id', '?state=wait_ready', 400, /^query: job_id: is missing/],
    ['job_id given twice', '?job_id=cs-1&job_id=cs-2&state=wait_ready', 400, /^query: job_id: must be given once, as text$/],
    ['an ip of 5,000 characters', `?job_id=cs-1&state=write_state&ip=${'1'.repeat(5000)}`, 400, /^query: ip: /],
    ['a NUL byte in node_roles', '?job_id=cs-1&state=write_state&node_roles=a%00b', 400, /^query: node_roles: no NUL or newline/],
    ['a 64 KiB query string', `?job_id=cs-1&state=write_state&pad=${'x'.repeat(64 * 1024)}`, 431, /Exceeded maximum allowed HTTP header size/],
    ['a 1 MiB query string', `?job_id=cs-1&state=write_state&pad=${'x'.repeat(1024 * 1024)}`, 431, /Exceeded maximum allowed HTTP header size/],
  ])('%s', async (what, query, status, message) => {
    const before = await snap(stack);
    const r = await fetch(`${stack.scheduler.url}${LEGACY}${query}`).catch((e: unknown) => e as Error);
    if (r instanceof Error) throw r;
    const text = await r.text();
    expect(r.status).toBe(status);
    expect(text.trim()).toMatch(message);
    expect(diffSnapshots(before, await snap(stack))).toEqual([]);
    const said = r.status === 431 ? 'Request Header Fields Too Large (the HTTP parser, before any handler)' : text.trim().slice(0, 100);
    note(`legacy endpoint: ${what}`, `HTTP ${r.status} "${said}"; 0 keys changed`);
  });
});

/** Waits on events only: under a load average of 20, 2,000 polls took more than 30 s to subscribe. Jest's timeout is the only limit. */
const POLLS_TEST_MS = 300_000;

describe('abandoned long polls', () => {
  const stack = useStack('polls');
  test(
    '2,000 long polls abandoned at once leave no subscription, and the next wait is answered',
    async () => {
      const { config, client, scheduler } = stack;
      const [a, b] = await submit(stack);
      const subject = `${config.subjectPrefix}.cluster.${a!.cluster}.barrier`;
      const N = 2000;
      const polls = Array.from({ length: N }, () => new AbortController());
      let abandoned = false;
      /** A poll that ended before the clients left (answered, refused, or its connection failed): the test says which, rather than waiting for a subscription that will never come. */
      const early: string[] = [];
      const pending = polls.map((c, i) =>
        fetch(`${scheduler.url}${LEGACY}?job_id=${a!.job_id}&state=wait_start&n=${i}`, { signal: c.signal })
          .then(async (r) => void (abandoned || early.push(`poll ${i}: HTTP ${r.status} ${(await r.text()).slice(0, 200)}`)))
          .catch((e: unknown) => void (abandoned || early.push(`poll ${i}: ${e instanceof Error ? `${e.message} ${String((e as { cause?: unknown }).cause ?? '')}` : String(e)}`))),
      );
      /** The clients leave, all at once; also when a wait below failed, so no poll outlives the test. */
      const abandon = async (): Promise<void> => {
        if (abandoned) return;
        abandoned = true;
        for (const c of polls) c.abort();
        await Promise.all(pending);
      };
      try {
        await eventually(
          async () => {
            if (early.length > 0) throw new Error(`${early.length} of ${N} long polls ended before the clients left:\n${early.slice(0, 5).join('\n')}`);
            return scheduler.shared.waiting === N;
          },
          `${N} open long polls to be held`,
          POLLS_TEST_MS,
        );
        // One NATS subscription serves them all (issue 23: it was one per poll, N²/2 deliveries).
        expect(await subsOn(subject)).toBe(1);
        // The polls of node a share one wait_start report, folded once the queue is empty.
        const reports = stack.res.add(new Queue(REPORTS_QUEUE, { connection: client, prefix: new Keys(config.keyPrefix).bullPrefix }), (q) => q.close());
        await eventually(async () => Object.values(await reports.getJobCounts('waiting', 'active', 'prioritized')).every((v) => v === 0), "the polls' reports to be folded", POLLS_TEST_MS);
        const outcomeKeys = await client.hlen(new Keys(config.keyPrefix).reports(a!.cluster));
        const before = await snap(stack);
        const t0 = Date.now();
        await abandon();
        await eventually(async () => scheduler.shared.waiting === 0 && (await subsOn(subject)) === 0, 'the abandoned polls and their subscription to go', POLLS_TEST_MS);
        const cleanMs = Date.now() - t0;
        // Leaving changes nothing: no report, no state.
        expect(diffSnapshots(before, await snap(stack))).toEqual([]);
        expect((await new ClusterStore(client, { keyPrefix: config.keyPrefix }).readCluster(a!.cluster)).nodes.map((n) => n.state)).toEqual(['start', '']);
        const [ra, rb] = await Promise.all([fetch(`${scheduler.url}${LEGACY}?job_id=${a!.job_id}&state=wait_start`), fetch(`${scheduler.url}${LEGACY}?job_id=${b!.job_id}&state=wait_start`)]);
        expect([await ra.text(), await rb.text()]).toEqual(['start', 'start']);
        note(
          `legacy endpoint: ${N.toLocaleString('en')} long polls abandoned at once`,
          `${outcomeKeys} report(s) folded for ${N} polls (they share node a's wait_start); the one shared NATS subscription gone ${cleanMs} ms after the clients left, leaving changed no key; the next waits answered start`,
        );
      } finally {
        await abandon();
      }
    },
    POLLS_TEST_MS,
  );
});

describe('submit API bearer token', () => {
  const stack = useStack('token');
  test.each([
    ['no Authorization header', null],
    ['a wrong token', 'not-the-token'],
    ['the token minus its last character', TOKEN.slice(0, -1)],
    ['the token plus one character', `${TOKEN}x`],
    ['Basic instead of Bearer', `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`],
    ['"Bearer" with no token', 'Bearer'],
    ['the token and more words', `Bearer ${TOKEN} ${TOKEN}`],
    ['an 8 KiB header', `Bearer ${'A'.repeat(8192)}`],
  ])('%s: 401 and nothing changes', async (what, header) => {
    const before = await snap(stack);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    // post() adds "Bearer "; raw headers here.
    if (header !== null) headers.authorization = header.startsWith('Basic') || header.startsWith('Bearer') ? header : `Bearer ${header}`;
    const r = await fetch(`${stack.scheduler.url}/jobs`, { method: 'POST', headers, body: JSON.stringify({ job: JOB, cluster_spec: SPEC }) });
    const body = (await r.json()) as SubmitMessage[];
    expect(r.status).toBe(401);
    expect(body[0]?.message).toMatch(/^(missing "Authorization: Bearer TOKEN" header|wrong bearer token)/);
    expect(diffSnapshots(before, await snap(stack))).toEqual([]);
    note(`submit API: ${what}`, `HTTP 401 "${body[0]?.message ?? ''}"; 0 keys changed`);
  });
});
