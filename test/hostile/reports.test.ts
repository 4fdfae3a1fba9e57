import { ErrorCode as NatsErrorCode } from 'nats';
import type { NatsError } from 'nats';
import type { Report } from '../../src/bus/messages';
import { decodeText } from '../../src/bus/connect';
import { note } from '../faults/summary';
import { eventually } from '../helpers/servers';
import { diffSnapshots, snapshotKeys } from '../helpers/snapshot';
import { expectRejected, goodReport, sendRaw, useReportHarness } from './report-harness';
import type { ReportHarness } from './report-harness';

/**
 * Hostile reports, sent as raw bytes on a cluster's report subject to real
 * workers: each is refused with a reason naming what is wrong, and no key
 * under the test's prefix changes. Replays are accepted (a re-send is how a
 * node recovers a lost reply) and change nothing.
 */
const harness = useReportHarness();

const MiB = 1024 * 1024;

describe('refused with a reason, nothing changed', () => {
  const cases: [string, (h: ReportHarness) => string | object | Uint8Array, string, RegExp][] = [
    ['report: empty body', () => '', 'INVALID', /^report is not JSON$/],
    ['report: invalid UTF-8 bytes', () => new Uint8Array([0xff, 0xfe, 0x7b, 0x00, 0xc3]), 'INVALID', /^report is not JSON$/],
    ['report: JSON null', () => 'null', 'INVALID', /^message: .*expected object/],
    ['report: 30,000-deep nested array', () => `${'['.repeat(30_000)}${']'.repeat(30_000)}`, 'INVALID', /^message: .*expected object, received array/],
    ['report: wrong type (at is a string)', (h) => goodReport(h.a, 0, { at: 'yesterday' }), 'INVALID', /^at: .*expected number, received string/],
    ['report: wrong type (job is a number)', (h) => goodReport(h.a, 0, { job: 42 }), 'INVALID', /^job: .*expected string, received number/],
    ['report: wrong version (v: 2)', (h) => goodReport(h.a, 0, { v: 2 }), 'INVALID', /^v: .*expected 1/],
    ['report: extra field', (h) => ({ ...goodReport(h.a, 0), admin: true }), 'INVALID', /^message: unknown field admin$/],
    ['report: extra field inside info', (h) => goodReport(h.a, 0, { info: { ip: '10.0.0.1', shell: 'rm -rf /' } }), 'INVALID', /^info: unknown field shell$/],
    ['report: NUL byte in info.ip', (h) => goodReport(h.a, 0, { info: { ip: '10.0.0.1\u0000x' } }), 'INVALID', /^info\.ip: no NUL or newline$/],
    [
      'report: info.ip with a host name after it (/etc/hosts injection)',
      (h) => goodReport(h.a, 0, { state: 'write_state', info: { ip: '6.6.6.6 gitee.com' } }),
      'INVALID',
      /^info\.ip: must be one IPv4 or IPv6 address$/,
    ],
    [
      'report: info.direct_macs not MAC addresses',
      (h) => goodReport(h.a, 0, { state: 'write_state', info: { direct_macs: 'ec:f4:bb:cb:7b:92 evil' } }),
      'INVALID',
      /^info\.direct_macs: must be MAC addresses/,
    ],
    [
      'report: info.direct_ips with a host name',
      (h) => goodReport(h.a, 0, { state: 'write_state', info: { direct_ips: '192.168.222.1 gitee.com' } }),
      'INVALID',
      /^info\.direct_ips: must be IPv4 addresses/,
    ],
    [
      'report: info.direct_ips more than the node has MACs',
      (h) => goodReport(h.a, 0, { state: 'write_state', info: { direct_ips: '192.168.222.1' } }),
      'INVALID',
      /^info\.direct_ips: must be 0 IPv4 addresses, one per MAC of this node, not 1$/,
    ],
    [
      "report: info.node_roles another node's role",
      (h) => goodReport(h.a, 0, { state: 'write_state', info: { node_roles: 'client' } }),
      'INVALID',
      /^info\.node_roles: must be this node's roles "server" \(or empty\), not "client"$/,
    ],
    ['report: a state that does not exist', (h) => goodReport(h.a, 0, { state: 'wait_lunch' }), 'INVALID', /^state: .*"write_state"/],
    ['report: missing token', (h) => goodReport(h.a, 0, { token: undefined }), 'INVALID', /^token: .*expected string, received undefined/],
    ['report: empty token', (h) => goodReport(h.a, 0, { token: '' }), 'INVALID', /^token: /],
    ['report: id with ":" (BullMQ key separator)', (h) => goodReport(h.a, 0, { id: 'evil:id:123' }), 'INVALID', /^id: letters, digits/],
    ['report: id that is a bare number', (h) => goodReport(h.a, 0, { id: '12345678' }), 'INVALID', /^id: must not be a bare number$/],
    ['report: wildcard as cluster id', (h) => goodReport(h.a, 0, { cluster: '>' }), 'INVALID', /^cluster: ">" is no cluster id: only letters, digits/],
    ['report: unknown cluster', (h) => goodReport(h.a, 0, { cluster: 'cs-424242' }), 'UNKNOWN_CLUSTER', /^unknown cluster cs-424242$/],
    ['report: wrong token', (h) => goodReport(h.a, 0, { token: 'guessed-token' }), 'BAD_TOKEN', /^wrong token for cluster cs-\d+$/],
    ['report: 1 MiB body', () => `{"v":1,"reason":"${'x'.repeat(MiB - 19)}"}`, 'TOO_LARGE', /^report is 1048576 bytes; the limit is 65536$/],
  ];
  test.each(cases)('%s', async (input, body, code, reason) => {
    const h = harness();
    const b = body(h);
    // The unknown cluster's report goes to that cluster's own subject, so the subject check passes and the lookup decides.
    const subjectCluster = typeof b === 'object' && !(b instanceof Uint8Array) && (b as Report).cluster === 'cs-424242' ? 'cs-424242' : h.a.cluster;
    await expectRejected(h, input, subjectCluster, b, code, reason);
  });

  test("a report for one cluster sent on another cluster's subject", async () => {
    const h = harness();
    await expectRejected(
      h,
      "report: on another cluster's subject",
      h.b.cluster,
      goodReport(h.a, 0),
      'OTHER_CLUSTER',
      `report for cluster ${h.a.cluster} sent on the subject of cluster ${h.b.cluster}`,
    );
  });

  test('a "__proto__" key in the JSON is refused as an unknown field and pollutes nothing', async () => {
    const h = harness();
    const good = JSON.stringify(goodReport(h.a, 0));
    const evil = `${good.slice(0, -1)},"__proto__":{"polluted":"yes"}}`;
    await expectRejected(h, 'report: "__proto__" key', h.a.cluster, evil, 'INVALID', /^message: unknown field __proto__$/);
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });
});

test('a body over the NATS server limit (2 MiB) never leaves the sender', async () => {
  const h = harness();
  const before = await snapshotKeys(h.redis, h.config.keyPrefix, { ignore: /:stalled-check$/ });
  const err = (await sendRaw(h, h.a.cluster, 'x'.repeat(2 * MiB)).catch((e: unknown) => e)) as NatsError;
  expect(err.code).toBe(NatsErrorCode.MaxPayloadExceeded);
  expect(diffSnapshots(before, await snapshotKeys(h.redis, h.config.keyPrefix, { ignore: /:stalled-check$/ }))).toEqual([]);
  note('report: 2 MiB body', `refused by the NATS client before sending (${err.code}, server max_payload 1 MiB); 0 keys changed`);
});

/** Waits until the workers folded report `id`, returning whether the fold saw it as a duplicate. */
function folded(h: ReportHarness, id: string): Promise<boolean> {
  return new Promise((resolve) => {
    const on = (r: Report, o: { ok: boolean; dup?: boolean }): void => {
      if (r.id !== id) return;
      h.workers.events.off('folded', on);
      resolve(Boolean(o.dup));
    };
    h.workers.events.on('folded', on);
  });
}

test('a replayed old report is accepted as a re-send, folded as a duplicate, and changes no cluster key', async () => {
  const h = harness();
  const c = await h.submit(2);
  const r0 = goodReport(c, 0);
  const r1 = goodReport(c, 1);
  await Promise.all([folded(h, r0.id as string), folded(h, r1.id as string), sendRaw(h, c.cluster, r0), sendRaw(h, c.cluster, r1)]);
  const ready = goodReport(c, 0, { state: 'wait_ready', id: `${c.jobs[0]!.job_id}.wait_ready.1` });
  await Promise.all([folded(h, ready.id as string), sendRaw(h, c.cluster, ready)]);
  expect((await h.workers.store.readCluster(c.cluster)).nodes.map((n) => n.state)).toEqual(['ready', 'start']);

  // Cluster keys only: the reports queue itself logs every job it runs.
  const clusterKeys = { ignore: /cs-bull:|:stalled-check$/ };
  const before = await snapshotKeys(h.redis, h.config.keyPrefix, clusterKeys);
  const resent: string[] = [];
  const sub = h.nc.subscribe(h.subjects.barrier(c.cluster), { callback: (_e, m) => resent.push(decodeText(m.data)) });
  await h.nc.flush();
  const dup = folded(h, r0.id as string);
  const reply = await sendRaw(h, c.cluster, r0); // the same bytes again, hours later as far as the fold knows
  expect(reply).toEqual({ ok: true, id: r0.id });
  expect(await dup).toBe(true);
  expect(diffSnapshots(before, await snapshotKeys(h.redis, h.config.keyPrefix, clusterKeys))).toEqual([]);
  // The node that re-sent gets its barrier's answer again.
  await eventually(() => resent.some((m) => (JSON.parse(m) as { barrier: string }).barrier === 'start'), 'the start answer to be sent again');
  sub.unsubscribe();

  // A stale report with a new id (wait_start from a node already at ready): states only move forward.
  const stale = goodReport(c, 0, { state: 'wait_start' });
  const staleDone = folded(h, stale.id as string);
  expect((await sendRaw(h, c.cluster, stale)).ok).toBe(true);
  await staleDone;
  const changed = diffSnapshots(before, await snapshotKeys(h.redis, h.config.keyPrefix, clusterKeys));
  expect(changed).toEqual([`~ ${h.config.keyPrefix}cs/cluster/${c.cluster}/reports (hash)`]);
  expect(await h.redis.hexists(h.workers.store.keys.reports(c.cluster), stale.id as string)).toBe(1);
  expect((await h.workers.store.readCluster(c.cluster)).nodes.map((n) => n.state)).toEqual(['ready', 'start']);
  note('report: replayed old report (same id)', 'accepted as a re-send, folded as duplicate; 0 cluster keys changed; start answer re-published');
  note('report: stale report (new id, earlier state)', "accepted, state stays ready, no event; only its record in the cluster's reports hash added");
});

// How long the good report's reply takes among 2,000 garbage ones is noted, not asserted (a 5 s request
// timeout expired under a load average of 20); its latency is measured by `npm run bench`.
test('a burst of 2,000 garbage reports neither stops the workers nor loses a good one sent among them', async () => {
  const h = harness();
  const c = await h.submit(2);
  const seen = h.rejections.length;
  const garbage = Array.from({ length: 2000 }, (_, i) => sendRaw(h, c.cluster, i % 2 ? `{"junk":${i}}` : goodReport(c, 0, { token: `t${i}` })));
  const good = goodReport(c, 0);
  const t0 = Date.now();
  const [replies, reply] = await Promise.all([Promise.all(garbage), sendRaw(h, c.cluster, good)]);
  const ms = Date.now() - t0;
  expect(replies.every((r) => !r.ok)).toBe(true);
  expect(reply.ok).toBe(true);
  await eventually(async () => (await h.workers.store.readCluster(c.cluster)).nodes[0]!.state === 'start', 'the good report to be folded');
  expect(h.rejections.length - seen).toBe(2000);
  note('report: burst of 2,000 garbage reports + 1 good', `2,000 rejected (INVALID / BAD_TOKEN), the good one accepted and folded; all replies within ${ms} ms`);
});
