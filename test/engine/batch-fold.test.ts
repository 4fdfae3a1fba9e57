import type { Report } from '../../src/bus/messages';
import { ClusterStore } from '../../src/cluster/store';
import type { SubmittedCluster } from '../../src/cluster/submit';
import type { ConnectionConfig } from '../../src/core/config';
import type { FoldOutcome } from '../../src/fold/outcome';
import { nodesJob, submitInline } from '../helpers/cluster';
import { Resources, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';

/**
 * The batch fold (fold-batch.lua) on a real Redis, without workers: each
 * report of a batch is folded on its own, deduplicated by its id within its
 * cluster, and a re-run of a batch (BullMQ re-runs a job whose worker died)
 * folds nothing twice.
 */
let servers: TestServers;
const res = new Resources();
let config: ConnectionConfig;
let store: ClusterStore;

beforeAll(async () => {
  servers = await startTestServers();
});
beforeEach(() => {
  config = servers.config();
  store = new ClusterStore(res.redis(config), { keyPrefix: config.keyPrefix });
});
afterAll(async () => {
  await res.closeAll();
  await servers.stop();
});

async function clusters(n: number, nodes: number, extra = ''): Promise<SubmittedCluster[]> {
  const { job, spec } = nodesJob(nodes, extra);
  return (await Promise.all(Array.from({ length: n }, () => submitInline(res, config, job, spec)))).flat();
}

let seq = 0;
function report(c: SubmittedCluster, node: number, state: Report['state'], id = `${c.jobs[node]!.job_id}.${state}.${++seq}`): Report {
  const j = c.jobs[node]!;
  return { v: 1, id, cluster: j.cluster, job: j.job_id, state, at: Date.now(), token: j.token };
}

interface Ev {
  type: string;
  job?: string;
  report?: string;
  state?: string;
  from?: string;
  barrier?: string;
  result?: string;
}
async function events(cid: string): Promise<Ev[]> {
  return (await store.redis.xrange(store.keys.events(cid), '-', '+')).map(([, f]) => JSON.parse(f[1]!) as Ev);
}
const resolutions = async (cid: string) => (await events(cid)).filter((e) => e.type === 'resolution').map((e) => `${e.barrier}=${e.result}`);
const moves = async (cid: string, job: string) => (await events(cid)).filter((e) => e.type === 'report' && e.job === job).map((e) => e.state);
const ok = (o: FoldOutcome | undefined) => (o?.ok ? o : undefined);

test('duplicates inside one batch and across batches are folded once; a repeat gets the stored answer', async () => {
  const [c] = await clusters(1, 2);
  const a = report(c!, 0, 'wait_start');
  const b = report(c!, 1, 'wait_start');
  const first = await store.foldBatch([a, a, b, b]);
  expect(first.map((o) => ok(o)?.dup)).toEqual([false, true, false, true]);
  expect(ok(first[2])?.resolutions.map((r) => r.result)).toEqual(['start']);
  expect(ok(first[3])?.answer?.result).toBe('start');
  // The same ids in a later batch, beside a new report: only the new one changes anything.
  const ready = report(c!, 0, 'wait_ready');
  const second = await store.foldBatch([b, ready, a]);
  expect(second.map((o) => ok(o)?.dup)).toEqual([true, false, true]);
  expect(second.map((o) => ok(o)?.answer?.result)).toEqual(['start', undefined, 'start']);
  expect(await moves(c!.cluster, c!.jobs[0]!.job_id)).toEqual(['start', 'ready']);
  expect(await moves(c!.cluster, c!.jobs[1]!.job_id)).toEqual(['start']);
  expect(await resolutions(c!.cluster)).toEqual(['start=start']);
  expect(await store.redis.hlen(store.keys.reports(c!.cluster))).toBe(3);
});

test('a bad report inside a batch is refused on its own and spoils none of its neighbours', async () => {
  const [c, other] = await clusters(2, 2);
  const good1 = report(c!, 0, 'wait_start');
  const wrongToken = { ...report(c!, 1, 'wait_start'), token: 'not-the-token' };
  const foreignJob = { ...report(c!, 1, 'wait_start'), job: other!.jobs[0]!.job_id };
  const unknownJob = { ...report(c!, 1, 'wait_start'), job: 'cs-999999' };
  const malformed = { ...report(c!, 1, 'wait_start'), state: 'dance' } as unknown as Report;
  const unknownCluster = { ...report(c!, 1, 'wait_start'), cluster: 'cs-888888' };
  const good2 = report(c!, 1, 'wait_start');
  const out = await store.foldBatch([good1, wrongToken, foreignJob, unknownJob, malformed, unknownCluster, good2]);
  expect(out.map((o) => (o.ok ? 'ok' : o.code))).toEqual(['ok', 'BAD_TOKEN', 'OTHER_CLUSTER', 'UNKNOWN_JOB', 'INVALID', 'UNKNOWN_CLUSTER', 'ok']);
  expect(out[4]).toMatchObject({ reason: 'state: not a report kind' });
  expect(ok(out[6])?.resolutions.map((r) => `${r.barrier}=${r.result}`)).toEqual(['start=start']);
  expect(await resolutions(c!.cluster)).toEqual(['start=start']);
  // Refused reports leave no record: the node may send the same id again, right this time.
  expect((await store.redis.hkeys(store.keys.reports(c!.cluster))).sort()).toEqual([good1.id, good2.id].sort());
  expect(await store.redis.exists(store.keys.reports('cs-888888'))).toBe(0);
  expect(await events(other!.cluster)).toHaveLength(1); // its "submitted" event only
});

test('a batch re-run after a crash folds every report once: one event per node move, every barrier right', async () => {
  const cs = await clusters(3, 3);
  // Every node of three clusters, interleaved: info, then the three barriers.
  const batch: Report[] = [];
  for (const kind of ['write_state', 'wait_start', 'wait_ready', 'finished'] as const) {
    for (let n = 0; n < 3; n++) {
      for (const c of cs) {
        const r = report(c, n, kind);
        if (kind === 'write_state') r.info = { ip: `10.0.${n}.1` };
        batch.push(r);
      }
    }
  }
  // The first run was cut short after folding the first half (its worker died); BullMQ runs the whole job again, twice.
  const half = await store.foldBatch(batch.slice(0, batch.length / 2));
  expect(half.every((o) => o.ok && !o.dup)).toBe(true);
  const full = await store.foldBatch(batch);
  expect(full.map((o) => ok(o)?.dup)).toEqual(batch.map((_, i) => i < batch.length / 2));
  const again = await store.foldBatch(batch);
  expect(again.every((o) => o.ok && o.dup)).toBe(true);
  for (const c of cs) {
    expect(await resolutions(c.cluster)).toEqual(['start=start', 'ready=ready', 'finish=finish']);
    for (const j of c.jobs) expect(await moves(c.cluster, j.job_id)).toEqual(['', 'start', 'ready', 'finish']);
    const view = await store.readCluster(c.cluster);
    expect(view.final).toBe('finish');
    expect(view.nodes.map((n) => [n.state, n.ip])).toEqual([0, 1, 2].map((n) => ['finish', `10.0.${n}.1`]));
    expect(await store.redis.hlen(store.keys.reports(c.cluster))).toBe(12);
  }
  // A re-run hands back what the first run decided, so its resolutions can be published again.
  const lastOfFirst = full.findIndex((o) => ok(o)?.resolutions.some((r) => r.barrier === 'finish'));
  expect(ok(again[lastOfFirst])?.resolutions.map((r) => r.barrier)).toEqual(['finish']);
});

test('deadlines live in one sorted set: none before admission, each next one written by the fold that resolves a barrier', async () => {
  const [c, d] = await clusters(2, 2, 'cluster_timeout: 1h');
  const deadlines = async () => Object.fromEntries(await store.redis.zrange(store.keys.deadlines, 0, -1, 'WITHSCORES').then((l) => l.flatMap((v, i) => (i % 2 ? [] : [[v, Number(l[i + 1])]]))));
  // Start's deadline counts from admission (test/admission/admission-take.test.ts); these clusters were not admitted.
  expect(await deadlines()).toEqual({});
  await store.foldBatch([report(c!, 0, 'wait_start'), report(c!, 1, 'wait_start'), report(d!, 0, 'failed')]);
  const started = await store.readCluster(c!.cluster);
  const at = started.barriers[0]!.at!;
  // c's start resolved: its ready deadline counts from then. d aborted: it has none left.
  expect(await deadlines()).toEqual({ [`${c!.cluster} ready`]: at + 3_600_000 });
  expect(started.barriers[1]!.deadline).toBe(at + 3_600_000);
  await store.foldBatch([report(c!, 0, 'finished'), report(c!, 1, 'finished')]);
  expect(await deadlines()).toEqual({});
});
