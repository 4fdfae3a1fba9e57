import { MAX_REPORT_BYTES } from '../../src/bus/messages';
import { eventually } from '../helpers/servers';
import { diffSnapshots } from '../helpers/snapshot';
import { note } from '../faults/summary';
import { expectRejected, goodReport, sendRaw, snapshot, useReportHarness } from '../hostile/report-harness';

/**
 * Reports the bridge must refuse: each gets `{ok:false, code, reason}` in
 * the NATS reply, and not one key under the test's prefix changes
 * (cluster state, id map, meta, event streams, BullMQ queues).
 */
const harness = useReportHarness();

test('a report that is not JSON is rejected and changes nothing', async () => {
  const h = harness();
  await expectRejected(h, 'report: malformed JSON', h.a.cluster, '{"v":1,"id":"abc', 'INVALID', 'report is not JSON');
});

test('a report from a job no cluster has is rejected and changes nothing', async () => {
  const h = harness();
  await expectRejected(h, 'report: unknown job', h.a.cluster, goodReport(h.a, 0, { job: 'cs-999999' }), 'UNKNOWN_JOB', 'unknown job cs-999999');
});

test("a report naming a job of another cluster, with this cluster's token, is rejected and changes nothing", async () => {
  const h = harness();
  const other = h.b.jobs[0]!.job_id;
  await expectRejected(h, 'report: job of another cluster', h.a.cluster, goodReport(h.a, 0, { job: other }), 'OTHER_CLUSTER', `job ${other} belongs to cluster ${h.b.cluster}, not ${h.a.cluster}`);
});

test('a report with a wrong token is rejected and changes nothing', async () => {
  const h = harness();
  // The token of cluster b: valid somewhere, wrong here.
  await expectRejected(h, 'report: wrong token', h.a.cluster, goodReport(h.a, 0, { token: h.b.jobs[0]!.token }), 'BAD_TOKEN', `wrong token for cluster ${h.a.cluster}`);
});

test('a report over 64 KiB is rejected by size before it is parsed, and changes nothing', async () => {
  const h = harness();
  const big = JSON.stringify(goodReport(h.a, 0, { reason: 'x'.repeat(MAX_REPORT_BYTES) }));
  await expectRejected(h, `report: oversized (${Buffer.byteLength(big)} bytes)`, h.a.cluster, big, 'TOO_LARGE', `report is ${Buffer.byteLength(big)} bytes; the limit is ${MAX_REPORT_BYTES}`);
});

test('after all that, a good report from the same node is accepted and folded, and the snapshot sees the change', async () => {
  const h = harness();
  const before = await snapshot(h);
  const reply = await sendRaw(h, h.a.cluster, goodReport(h.a, 0));
  expect(reply.ok).toBe(true);
  await eventually(async () => (await h.workers.store.readCluster(h.a.cluster)).nodes[0]!.state === 'start', 'the good report to be folded');
  const changed = diffSnapshots(before, await snapshot(h));
  // The same comparison that found nothing above does see a real fold.
  expect(changed).toEqual(expect.arrayContaining([`~ ${h.config.keyPrefix}sched/cluster_state (hash)`, `~ ${h.config.keyPrefix}cs/cluster/${h.a.cluster}/events (stream)`]));
  note('report: a good one after the bad ones', `accepted and folded (node state start); snapshot shows ${changed.length} keys changed`);
});
