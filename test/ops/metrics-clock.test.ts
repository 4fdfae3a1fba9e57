import { Subjects } from '../../src/bus/subjects';
import { encodeJson } from '../../src/bus/connect';
import { attachWorkerMetrics } from '../../src/ops/metrics/worker-metrics';
import { startWorkers } from '../../workers';
import { note } from '../faults/summary';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * Issue 10, item 8: a node whose clock is wrong (`at: 0`) put 57 years into
 * cs_barrier_latency_seconds. Latency is measured on the workers' clock,
 * from the moment the report that completed the barrier was accepted.
 */
const lab = useTestServers();
const { res } = lab;

test.each([
  ['at: 0 (the epoch)', 0],
  ['a year ahead', Date.now() + 365 * 86_400_000],
])('a node clock %s does not skew the barrier latency metric', async (what, at) => {
  const config = lab.servers.config();
  const workers = res.add(await startWorkers(config), (w) => w.close());
  const metrics = attachWorkerMetrics(workers.events);
  const { job, spec } = nodesJob(2);
  const [cluster] = await submitInline(res, config, job, spec);
  const nc = await res.nats(config);
  const subjects = new Subjects(config.subjectPrefix);
  for (const j of cluster!.jobs) {
    const reply = await nc.request(subjects.report(j.cluster), encodeJson({ v: 1, id: `skew-${j.job_id}-start`, cluster: j.cluster, job: j.job_id, state: 'wait_start', at, token: j.token }));
    expect(reply.json()).toMatchObject({ ok: true });
  }
  const latency = await eventually(async () => {
    const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === 'cs_barrier_latency_seconds');
    const values = (m?.values ?? []) as { metricName?: string; value: number; labels: Record<string, unknown> }[];
    const count = values.find((v) => v.metricName === 'cs_barrier_latency_seconds_count' && v.labels.barrier === 'start')?.value ?? 0;
    const sum = values.find((v) => v.metricName === 'cs_barrier_latency_seconds_sum' && v.labels.barrier === 'start')?.value ?? 0;
    return count === 1 ? { sum } : undefined;
  }, 'the start resolution to be measured');
  metrics.detach();
  // Measured on the workers' clock it is the time the workers took: well under an hour on any machine.
  expect(latency.sum).toBeGreaterThanOrEqual(0);
  expect(latency.sum).toBeLessThan(3600);
  note(`barrier completed by reports whose node clock says ${what}`, `cs_barrier_latency_seconds observed ${latency.sum.toFixed(3)} s (the workers' clock), not the node's offset`);
});
