import { submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { rawTake, takenJob } from '../helpers/take';
import { useTestServers } from '../helpers/use-test-servers';
import type { MachinesView } from '../../src/ops/machines-view';
import { startOpsApp } from './ops-app';

/* GET /ops/machines: the machines admission knows and the clusters waiting, with real workers and real takes over NATS. */
const lab = useTestServers({ workers: { sweepEveryMs: 100 } });
const { res } = lab;

const PAIR = 'nodes:\n  ma--1: { roles: [server] }\n  mb--1: { roles: [client] }\n';
const JOB = 'suite: t\ncluster: cs-test\nif role server:\n  srv:\nif role client:\n  cli:\n';

test('machines per testbox with state, last contact and cluster; waiting clusters with what they wait for', async () => {
  const { url } = await startOpsApp(res, lab.config);
  const get = async (): Promise<MachinesView> => {
    const r = await fetch(`${url}/ops/machines`);
    expect(r.status).toBe(200);
    return (await r.json()) as MachinesView;
  };
  expect(await get()).toMatchObject({ machines: [], waiting: [] });

  const [x] = await submitInline(res, lab.config, JOB, PAIR);
  // a1 of testbox ma asks: X cannot be admitted, testbox mb has no machine.
  expect(takenJob(await rawTake(res, lab.config, 'ma', 'a1'))).toBeNull();
  let v = await get();
  expect(v.machines.map((m) => [m.testbox, m.id, m.state, m.cluster ?? null])).toEqual([['ma', 'a1', 'idle', null]]);
  expect(v.machines[0]!.seen).toBeLessThanOrEqual(v.now + 1000);
  expect(v.waiting.map((w) => w.cluster)).toEqual([x!.cluster]);
  expect(v.waiting[0]!.waitsFor[0]).toBe('testbox ma: 1 idle (needs 1)');
  expect(v.waiting[0]!.waitsFor[1]).toMatch(/^testbox mb: no live machine for \S+ \(needs 1\)$/);

  // b1 arrives: X is admitted whole; both machines run its node jobs and X waits no more.
  const b = await rawTake(res, lab.config, 'mb', 'b1');
  const a = await rawTake(res, lab.config, 'ma', 'a1');
  expect([takenJob(a), takenJob(b)]).toEqual(x!.jobs.map((j) => j.job_id));
  // A third machine whose agent stops is gone.
  expect(takenJob(await rawTake(res, lab.config, 'mc', 'c1'))).toBeNull();
  expect(await rawTake(res, lab.config, 'mc', 'c1', { leave: true })).toEqual({ ok: true, job: null });
  await eventually(async () => (await get()).machines.some((m) => m.id === 'c1' && m.state === 'gone'), 'c1 to be gone', 20_000);
  v = await get();
  expect(v.machines.map((m) => [m.testbox, m.id, m.state, m.cluster ?? null])).toEqual([
    ['ma', 'a1', 'running', x!.cluster],
    ['mb', 'b1', 'running', x!.cluster],
    ['mc', 'c1', 'gone', null],
  ]);
  expect(v.machines[0]!.doing).toBe(`runs ${x!.jobs[0]!.job_id} of ${x!.cluster}`);
  expect(v.waiting).toEqual([]);
});
