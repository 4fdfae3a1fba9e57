import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import type { NodeClient } from '../../src/client/node-client';
import type { ConnectionConfig } from '../../src/core/config';
import { startWorkers } from '../../workers';
import { nodesJob, submitInline } from '../helpers/cluster';
import { ROOT } from '../helpers/processes';
import { Resources, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';
import { startOpsApp } from './ops-app';
import { nodeClients } from '../helpers/cluster';
import { MessageClient } from '../../src/client/message-client';
import { ClusterStore } from '../../src/cluster/store';
import { QueueSet } from '../../src/queue/queues';
import { retryCluster } from '../../src/results/resubmit';
import { rawTake, takenJob } from '../helpers/take';

/*
 * The /ui page in a real headless Chromium (Debian's /usr/bin/chromium, never
 * a downloaded browser): clusters run through their barriers while the page
 * is open, and the lanes, report dots and barrier lines appear as they do.
 */
const CHROMIUM = '/usr/bin/chromium';
const OUT = path.join(ROOT, 'test-output');

let servers: TestServers;
let config: ConnectionConfig;
let context: BrowserContext;
let profile: string;
const res = new Resources();

beforeAll(async () => {
  servers = await startTestServers();
  config = servers.config();
  res.add(await startWorkers(config), (w) => w.close());
  profile = mkdtempSync(path.join(tmpdir(), 'cs-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 640 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  mkdirSync(OUT, { recursive: true });
});
afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await res.closeAll();
  await servers?.stop();
});

/** The node reports `kind`; resolves once the page shows that report's dot on the node's lane, with the (pending) answer. */
async function step(page: Page, node: NodeClient, kind: 'wait_start' | 'wait_ready' | 'finished' | 'failed', reason?: string): Promise<{ answered: Promise<unknown> }> {
  const answered = kind === 'failed' ? node.report('failed', { reason }) : node.wait(kind);
  await page.locator(`.report[data-job="${node.id.job}"][data-report="${kind}"]`).waitFor();
  return { answered };
}

test('the page lists clusters live and draws a timeline with lanes, barrier lines and the abort reason', async () => {
  const { url } = await startOpsApp(res, config);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}/ui`);
  await page.locator('#live:not(.off)').waitFor({ timeout: 10_000 });
  await page.locator('#empty').waitFor();

  // Cluster A: two nodes through start, ready and finish.
  const { job, spec } = nodesJob(2);
  const [a] = await submitInline(res, config, job, spec);
  const [server, client] = await nodeClients(res, config, a!);
  await server!.report('write_state', { info: { ip: '192.168.122.11' } });
  const row = page.locator(`#clusters tr[data-cluster="${a!.cluster}"]`);
  await row.waitFor({ timeout: 10_000 });
  await row.click();
  await page.locator('#detail-pane[data-cluster] [data-lane]').first().waitFor();
  await client!.report('write_state', { info: { ip: '192.168.122.12' } });
  expect(await page.locator('[data-lane]').evaluateAll((ls) => ls.map((l) => l.getAttribute('data-lane')))).toEqual(a!.jobs.map((j) => j.job_id));

  for (const [kind, barrier] of [
    ['wait_start', 'start'],
    ['wait_ready', 'ready'],
    ['finished', 'finish'],
  ] as const) {
    const first = await step(page, server!, kind);
    expect(await page.locator(`.barrier-line[data-barrier="${barrier}"]`).count()).toBe(0); // not before the last node
    const second = await step(page, client!, kind);
    await Promise.all([first.answered, second.answered]);
    await page.locator(`.barrier-line[data-barrier="${barrier}"][data-result="${barrier}"]`).waitFor({ timeout: 10_000 });
  }
  await page.locator(`#clusters tr[data-cluster="${a!.cluster}"][data-state="finish"]`).waitFor();
  expect(await page.locator('.barrier-line').count()).toBe(3);
  expect(await page.locator('.report').count()).toBe(8);
  await page.screenshot({ path: path.join(OUT, 'ui-finished.png'), fullPage: true });

  // Cluster B: the client's test fails after start; ready and finish resolve abort with its reason.
  const [b] = await submitInline(res, config, job, spec);
  const [bs, bc] = await nodeClients(res, config, b!);
  await bs!.report('write_state', { info: { ip: '192.168.122.21' } });
  await page.locator(`#clusters tr[data-cluster="${b!.cluster}"]`).click({ timeout: 10_000 });
  await page.locator(`#detail-pane[data-cluster="${b!.cluster}"]`).waitFor();
  await bc!.report('write_state', { info: { ip: '192.168.122.22' } });
  const s1 = await step(page, bs!, 'wait_start');
  const s2 = await step(page, bc!, 'wait_start');
  await Promise.all([s1.answered, s2.answered]);
  const waitingServer = await step(page, bs!, 'wait_ready');
  await step(page, bc!, 'failed', 'iperf3 exited 1: connection refused');
  expect((await waitingServer.answered) as { result: string }).toMatchObject({ result: 'abort' });
  await page.locator('.barrier-line[data-barrier="ready"][data-result="abort"]').waitFor();
  await page.locator('.barrier-line[data-barrier="finish"][data-result="abort"]').waitFor();
  await page.locator(`[data-lane="${b!.jobs[1]!.job_id}"][data-state="abort"]`).waitFor();
  expect(await page.locator('#abort-reason').textContent()).toBe(`aborted: node ${b!.jobs[1]!.job_id} (client) reported failed: iperf3 exited 1: connection refused`);
  await page.locator(`#clusters tr[data-cluster="${b!.cluster}"][data-state="abort"]`).waitFor();
  expect(await page.locator('#clusters tbody tr').count()).toBe(2);
  // The verdict of the one result (src/results): a test failure.
  await page.locator('#verdict[data-verdict="failed"]').waitFor();
  expect(await page.locator('#verdict').textContent()).toBe('verdict failed (test_failed)');
  await page.screenshot({ path: path.join(OUT, 'ui-aborted.png'), fullPage: true });
  expect(errors).toEqual([]);
});

test('a named sync gets a marker on the timeline, and each node that waited a bar saying how long', async () => {
  const { url } = await startOpsApp(res, config);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}/ui`);
  await page.locator('#live:not(.off)').waitFor({ timeout: 10_000 });
  const { job, spec } = nodesJob(3);
  const [c] = await submitInline(res, config, job, spec);
  const nodes = await nodeClients(res, config, c!);
  const group = Object.fromEntries(c!.jobs.map((j) => [j.job_id, j.node_roles]));
  const msgs = nodes.map((n) => res.add(new MessageClient(n, group), (m) => m.close()));
  await nodes[0]!.report('write_state', { info: { ip: '192.168.122.31' } });
  await page.locator(`#clusters tr[data-cluster="${c!.cluster}"]`).click({ timeout: 10_000 });
  await page.locator(`#detail-pane[data-cluster="${c!.cluster}"]`).waitFor();
  const early = [msgs[0]!.sync('ready'), msgs[1]!.sync('ready')];
  await page.locator(`.report, [data-lane="${c!.jobs[0]!.job_id}"]`).first().waitFor();
  expect(await page.locator('.sync-marker').count()).toBe(0); // nobody released yet
  await msgs[2]!.sync('ready');
  await Promise.all(early);
  await page.locator('.sync-marker[data-msg="ready"]').waitFor();
  const bars = await page.locator('.sync-marker[data-msg="ready"] .sync-wait').evaluateAll((bs) => bs.map((b) => [b.getAttribute('data-job'), b.querySelector('title')?.textContent ?? '']));
  expect(bars.map(([j]) => j).sort()).toEqual(c!.jobs.map((j) => j.job_id).sort());
  for (const [j, title] of bars) expect(title).toMatch(new RegExp(`^${j} waited \\d+(ms|\\.\\d+s) at wait-all ready$`));
  await page.screenshot({ path: path.join(OUT, 'ui-sync.png'), fullPage: true });
  expect(errors).toEqual([]);
});

test('a retried cluster shows its verdict and every attempt', async () => {
  const { url } = await startOpsApp(res, config);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const { job, spec } = nodesJob(2, 'cluster_retries: 1');
  const [first] = await submitInline(res, config, job, spec);
  const store = new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix });
  const queues = res.add(new QueueSet(store.redis, store.keys), (q) => q.close());
  const [n1] = await nodeClients(res, config, first!);
  await n1!.report('abort', { reason: 'no heartbeat for 15s (dead node)' });
  const second = await retryCluster(store, queues, first!.cluster);
  const clients = await nodeClients(res, config, { ...first!, cluster: second!.cluster, jobs: second!.jobs });
  await Promise.all(clients.map((c) => c.wait('wait_start')));
  await Promise.all(clients.map((c) => c.wait('wait_ready')));
  await Promise.all(clients.map((c) => c.wait('finished')));
  await page.goto(`${url}/ui#${first!.cluster}`);
  await page.locator('#verdict[data-verdict="passed"]').waitFor();
  expect(await page.locator('#attempts tbody tr').evaluateAll((rows) => rows.map((r) => String((r as unknown as { innerText: string }).innerText).split('\t')))).toEqual([
    ['1', first!.cluster, 'aborted', 'dead_node'],
    ['2', second!.cluster, 'passed', 'finished'],
  ]);
  await page.screenshot({ path: path.join(OUT, 'ui-retried.png'), fullPage: true });
  expect(errors).toEqual([]);
});

test('the page shows machines per testbox with their state, and a cluster waiting for admission with what it waits for', async () => {
  const { url } = await startOpsApp(res, config);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const [w] = await submitInline(res, config, 'suite: t\ncluster: cs-test\nif role server:\n  srv:\nif role client:\n  cli:\n', 'nodes:\n  ua--1: { roles: [server] }\n  ub--1: { roles: [client] }\n');
  expect(takenJob(await rawTake(res, config, 'ua', 'ui-a1'))).toBeNull();
  await page.goto(`${url}/ui`);
  const row = page.locator('#machines tr[data-machine="ui-a1"][data-state="idle"]');
  await row.waitFor();
  expect((await row.locator('td').allTextContents()).slice(0, 3)).toEqual(['ua', 'ui-a1', 'idle']);
  const waiting = page.locator(`#waiting li[data-cluster="${w!.cluster}"]`);
  await waiting.waitFor();
  expect(await waiting.locator('li').allTextContents()).toEqual(['testbox ua: 1 idle (needs 1)', expect.stringMatching(/^testbox ub: no live machine for \S+ \(needs 1\)$/)]);
  // The partner arrives: both machines run the cluster's node jobs, and it waits no more.
  expect(takenJob(await rawTake(res, config, 'ub', 'ui-b1'))).not.toBeNull();
  await page.locator(`#machines tr[data-machine="ui-b1"][data-state="running"]`).waitFor();
  await waiting.waitFor({ state: 'detached' });
  await page.screenshot({ path: path.join(OUT, 'ui-machines.png'), fullPage: true });
  expect(errors).toEqual([]);
});
