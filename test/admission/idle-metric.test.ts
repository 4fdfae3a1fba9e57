import type { Report } from '../../src/bus/messages';
import { clusterEvents } from '../../src/ops/cluster-summary';
import { startWorkerMetrics } from '../../src/ops/metrics/worker-server';
import { scriptsTree, startAgent } from '../agent/agent-helpers';
import { submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { rawTake, takenJob } from '../helpers/take';
import { useTestServers } from '../helpers/use-test-servers';

/*
 * cs_machine_idle_before_start_seconds_total{testbox}, through a worker's
 * /metrics, with real in-process agents: machine A takes its node job and
 * waits at start; only then does machine B's agent start and take its own.
 */
const lab = useTestServers({ workers: { sweepEveryMs: 100 } });
const { res } = lab;

const tree = scriptsTree({ 'tests/quick': '#!/bin/sh\ntrue\n' });
const PAIR = 'nodes:\n  ia--1: { roles: [server] }\n  ib--1: { roles: [client] }\n';
const JOB = 'suite: t\ncluster: cs-test\nif role server:\n  quick:\nif role client:\n  quick:\n';

function counter(text: string, testbox: string): number | undefined {
  const m = text.match(new RegExp(`^cs_machine_idle_before_start_seconds_total\\{testbox="${testbox}"\\} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

test('machine-seconds held idle before start grow by the time one machine waited for its partner', async () => {
  const metrics = res.add((await startWorkerMetrics(lab.workers.events, 0))!, (m) => m.close());
  const scrape = async (): Promise<string> => (await fetch(metrics.url)).text();
  expect(counter(await scrape(), 'ia')).toBeUndefined();

  // Machine b1 of testbox ib is known (idle) before the cluster is submitted; its agent comes later.
  expect(takenJob(await rawTake(res, lab.config, 'ib', 'b1'))).toBeNull();
  const [x] = await submitInline(res, lab.config, JOB, PAIR);
  const [ja, jb] = x!.jobs.map((j) => j.job_id);
  const folded = (job: string | undefined): Promise<void> =>
    new Promise((resolve) => {
      const on = (report: Report): void => {
        if (report.job !== job || report.state !== 'wait_start') return;
        lab.workers.events.off('folded', on);
        resolve();
      };
      lab.workers.events.on('folded', on);
    });
  const aWaits = folded(ja);
  const a = await startAgent(res, lab.config, 'ia', tree, { machineId: 'a1' });
  await aWaits;
  // A is inside its node job, at start; now B's agent starts and takes the job assigned to b1.
  const b = await startAgent(res, lab.config, 'ib', tree, { machineId: 'b1' });
  expect([await a.code, await b.code]).toEqual([0, 0]);

  const text = await eventually(
    async () => {
      const t = await scrape();
      return counter(t, 'ia') !== undefined && counter(t, 'ib') !== undefined ? t : undefined;
    },
    'the idle counter of both testboxes',
    20_000,
  );
  // The workers' own record (the cluster's event log, Redis clock): each node's wait_start, and start's resolution.
  const events = await clusterEvents(lab.workers.store, x!.cluster);
  const at = (job: string | undefined): number => events.find((e) => e.type === 'report' && e.report === 'wait_start' && e.job === job)!.at;
  const start = events.find((e) => e.type === 'resolution' && e.barrier === 'start')!.at;
  const between = at(jb) - at(ja);
  expect(between).toBeGreaterThan(0);
  expect(counter(text, 'ia')).toBeGreaterThanOrEqual(between / 1000);
  expect(counter(text, 'ia')).toBeCloseTo((start - at(ja)) / 1000, 3);
  expect(counter(text, 'ib')).toBeCloseTo((start - at(jb)) / 1000, 3);
  expect(text).toMatch(/^cs_machine_idle_before_start_seconds_count 2$/m);
});
