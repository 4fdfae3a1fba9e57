import type { ClusterEvent } from '../../src/fold/outcome';
import { nodesJob, submitInline } from '../helpers/cluster';
import { startOpsApp } from './ops-app';
import { nodeClients } from '../helpers/cluster';
import { useTestServers } from '../helpers/use-test-servers';
import { allWait } from './ops-helpers';

const lab = useTestServers({ workers: true });
const { res } = lab;
let url: string;
beforeAll(async () => {
  ({ url } = await startOpsApp(res, lab.config));
});

/** Reads Server-Sent Events from `path` until `count` events came, then disconnects. */
async function sse(path: string, count: number, headers: Record<string, string> = {}, during?: () => Promise<unknown>): Promise<{ id: string; ev: ClusterEvent }[]> {
  const ctrl = new AbortController();
  const r = await fetch(`${url}${path}`, { headers, signal: ctrl.signal });
  expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  const reader = r.body!.getReader();
  const out: { id: string; ev: ClusterEvent }[] = [];
  let buf = '';
  const pending = during?.();
  const timer = setTimeout(() => ctrl.abort(), 10_000);
  try {
    while (out.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += new TextDecoder().decode(value);
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const id = /^id: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (id && data) out.push({ id, ev: JSON.parse(data) as ClusterEvent });
      }
    }
  } finally {
    clearTimeout(timer);
    ctrl.abort();
    await pending;
  }
  return out;
}

test('the event stream sends live events with their stream ids, and replays what a client missed after Last-Event-ID', async () => {
  const { job, spec } = nodesJob(2);
  const [c] = await submitInline(res, lab.config, job, spec);
  const nodes = await nodeClients(res, lab.config, c!);
  const live = await sse(`/ops/events?cluster=${c!.cluster}`, 3, {}, () => allWait(nodes, 'wait_start'));
  expect(live.map((e) => e.ev.type)).toEqual(['report', 'report', 'resolution']);
  expect(live.every((e) => e.id === e.ev.id)).toBe(true);
  // A client that saw only the first report reconnects: it gets the rest, then live ones.
  const again = await sse('/ops/events', 5, { 'last-event-id': live[0]!.id }, () => allWait(nodes, 'wait_ready'));
  expect(again.slice(0, 2).map((e) => e.id)).toEqual(live.slice(1).map((e) => e.id));
  expect(again.slice(2).map((e) => (e.ev.type === 'report' ? e.ev.report : e.ev.type))).toEqual(['wait_ready', 'wait_ready', 'resolution']);
});

test('cluster JSON for the page; bad ids and unknown files are refused', async () => {
  const { job, spec } = nodesJob(2);
  const [c] = await submitInline(res, lab.config, job, spec);
  const one = (await (await fetch(`${url}/ops/clusters/${c!.cluster}`)).json()) as { summary: { waiting: number; nodes: number; pending: string }; events: ClusterEvent[] };
  expect(one.summary).toMatchObject({ waiting: 0, nodes: 2, pending: 'start' });
  expect(one.events.map((e) => e.type)).toEqual(['submitted']);
  const list = (await (await fetch(`${url}/ops/clusters`)).json()) as { clusters: { id: string }[] };
  expect(list.clusters[0]!.id).toBe(c!.cluster); // newest first
  expect((await fetch(`${url}/ops/clusters/cs-999999`)).status).toBe(404);
  const bad = await fetch(`${url}/ops/clusters/a.b`);
  expect([bad.status, await bad.json()]).toEqual([400, { error: 'cluster: "a.b" is no cluster id: no "." (it is one NATS subject token)' }]);
  expect((await fetch(`${url}/ops/events?cluster=x.*`)).status).toBe(400);
  expect((await fetch(`${url}/ui/..%2F..%2Fpackage.json`)).status).toBe(404);
  expect((await fetch(`${url}/ui/secret.txt`)).status).toBe(404);
  const page = await fetch(`${url}/ui`);
  expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(await page.text()).toContain('<script src="/ui/app.js">');
  expect((await fetch(`${url}/ui/app.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
});

test('closing the server ends open event streams instead of waiting for them', async () => {
  const own = await startOpsApp(res, lab.config);
  const ctrl = new AbortController();
  const stream = await fetch(`${own.url}/ops/events`, { signal: ctrl.signal });
  const reader = stream.body!.getReader();
  let bound: NodeJS.Timeout | undefined;
  const hung = new Promise<string>((resolve) => (bound = setTimeout(() => resolve('still closing after 3 s'), 3000)));
  expect(await Promise.race([own.app.close().then(() => 'closed'), hung])).toBe('closed');
  clearTimeout(bound);
  // The client sees the end of the stream.
  let done = false;
  while (!done) done = (await reader.read()).done;
  ctrl.abort();
});
