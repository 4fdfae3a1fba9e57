import { decodeText, encodeJson } from '../../src/bus/connect';
import type { ReportReply } from '../../src/bus/messages';
import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import { Keys } from '../../src/core/keys';
import { nodesJob, submitInline } from '../helpers/cluster';
import { WAIT_MS } from '../helpers/processes';
import { useTestServers } from '../helpers/use-test-servers';
import { note } from '../faults/summary';

/**
 * Issue 11 item 3: report ids were recorded under one global key per id
 * (`cs/report/<id>`), so a node of cluster A could send a report whose id is
 * the dead-node abort id of a cluster B that does not exist yet (ids are
 * predictable: `dead-<cid>-<job>`, job ids count up). When B's node died, its
 * abort was taken for a repeat and folded as nothing: B waited for its
 * deadline (8 h by default) instead of aborting. Records are per cluster now,
 * and the workers' own ids start with a character no node's id may hold.
 */
const lab = useTestServers({ workers: { sweepEveryMs: 100 } });
const { res } = lab;

test('a node of cluster A cannot pre-claim the dead-node abort of a future cluster B: B still aborts when its node dies', async () => {
  const HB = 200;
  const { job, spec } = nodesJob(2, 'cluster_timeout: 1h');
  const [a] = await submitInline(res, lab.config, job, spec);
  const nc = await res.nats(lab.config);
  const subjects = new Subjects(lab.config.subjectPrefix);
  const redis = res.redis(lab.config);
  // B will be the next cluster: its job ids follow the counter.
  const seq = Number(await redis.get(new Keys(lab.config.keyPrefix).jobSeq));
  const [b1, b2] = [`cs-${seq + 1}`, `cs-${seq + 2}`];
  const attacker = a!.jobs[0]!;
  const send = async (id: string): Promise<ReportReply> => {
    const body = { v: 1, id, cluster: attacker.cluster, job: attacker.job_id, state: 'abort', at: Date.now(), token: attacker.token };
    return JSON.parse(decodeText((await nc.request(subjects.report(attacker.cluster), encodeJson(body), { timeout: WAIT_MS })).data)) as ReportReply;
  };
  // The id format of the old workers, and of these workers: the first only aborts A (its own cluster), the second is refused.
  const old = await send(`dead-${b1}-${b2}`);
  const internal = await send(`~dead-${b2}`);
  expect(old.ok).toBe(true);
  expect(internal).toMatchObject({ ok: false, code: 'INVALID' });
  expect(internal.ok ? '' : internal.reason).toMatch(/^id: /);

  const [b] = await submitInline(res, lab.config, job, spec, HB);
  expect(b!.jobs.map((j) => j.job_id)).toEqual([b1, b2]);
  const [n1, n2] = b!.jobs.map((j) => res.add(new NodeClient(nc, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close()));
  await Promise.all([n1!.start(), n2!.start()]);
  const stop1 = n1!.startHeartbeat(HB);
  const stop2 = n2!.startHeartbeat(HB);
  await Promise.all([n1!.wait('wait_start'), n2!.wait('wait_start')]);
  stop2(); // node 2's machine loses power
  const answer = await n1!.wait('wait_ready');
  stop1();
  expect(answer.result).toBe('abort');
  expect(answer.reason).toContain(`node ${b2} (client) reported abort: no heartbeat for 600ms (dead node)`);
  const store = lab.workers.store;
  expect(await redis.hkeys(store.keys.reports(b!.cluster))).toContain(`~dead-${b2}`);
  expect(await redis.hexists(store.keys.reports(a!.cluster), `dead-${b1}-${b2}`)).toBe(1);
  note(
    'report: a node of cluster A sends the dead-node abort id of a future cluster B',
    `the old-format id is folded in A only (per-cluster records); the internal id "~dead-${b2}" is refused INVALID; B's dead node aborts B: "${answer.reason ?? ''}"`,
  );
});
