import { ClusterStore } from '../../src/cluster/store';
import { nodeClients, nodesJob, submitInline } from '../helpers/cluster';
import { envFor } from '../helpers/processes';
import { CliProcess } from '../helpers/processes';
import { useTestServers } from '../helpers/use-test-servers';

const lab = useTestServers();
const { res } = lab;
const workers: CliProcess[] = [];

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const w = lab.track(new CliProcess(['worker', '--concurrency', '8'], envFor(lab.config, { CS_LOG_LEVEL: 'debug' })));
    workers.push(w);
  }
  await Promise.all(workers.map((w) => w.waitFor(/workers ready/)));
});

test('two worker processes folding the same clusters at once lose nothing, round after round', async () => {
  const ROUNDS = 5;
  const CLUSTERS = 8;
  const NODES = 4;
  const nc = await res.nats(lab.config);
  const resent: string[] = [];
  const store = new ClusterStore(res.redis(lab.config), { keyPrefix: lab.config.keyPrefix });
  for (let round = 0; round < ROUNDS; round++) {
    const { job, spec } = nodesJob(NODES);
    const clusters = (await Promise.all(Array.from({ length: CLUSTERS }, () => submitInline(res, lab.config, job, spec)))).flat();
    await Promise.all(
      clusters.map(async (c) => {
        const nodes = await nodeClients(res, lab.config, c, { onNotice: (m) => resent.push(m) }, nc);
        // Every node sends everything at once: its info, then each barrier; reports of one cluster race across both workers.
        await Promise.all(nodes.map((n, i) => n.report('write_state', { info: { ip: `10.0.0.${i + 1}`, node_roles: i === 0 ? 'server' : 'client' } })));
        for (const kind of ['wait_start', 'wait_ready', 'finished'] as const) {
          const answers = await Promise.all(nodes.map((n) => n.wait(kind)));
          expect(new Set(answers.map((a) => a.result)).size).toBe(1);
          expect(answers[0]!.result).not.toBe('abort');
        }
      }),
    );
    for (const c of clusters) {
      const view = await store.readCluster(c.cluster);
      expect(view.final).toBe('finish');
      expect(view.nodes.map((n) => [n.state, n.ip])).toEqual(c.jobs.map((_, i) => ['finish', `10.0.0.${i + 1}`]));
      // Exactly one event per state change of each node, and one per barrier: nothing lost, nothing folded twice.
      // (write_state has an event of its own only when its fold comes first: the waits carry its info too.)
      const events = (await store.redis.xrange(store.keys.events(c.cluster), '-', '+')).map(([, f]) => JSON.parse(f[1]!) as { type: string; job?: string; state?: string; from?: string });
      expect(events.filter((e) => e.type === 'resolution')).toHaveLength(3);
      for (const j of c.jobs) {
        const moves = events.filter((e) => e.type === 'report' && e.job === j.job_id && e.state !== e.from).map((e) => e.state);
        expect(moves).toEqual(['start', 'ready', 'finish']);
      }
    }
  }
  // Both processes really folded reports, and every report was folded by exactly one of them (logs are complete once they exit).
  // A report may reach the workers more than once: its node sends it again when the reply is late (2 s, easily
  // passed on a loaded machine), and a batch whose lock lapsed is run again. Such a repeat is logged as folded
  // with dup=true and changes nothing: what must hold is one fold with dup=false per report, across both processes.
  await Promise.all(workers.map((w) => w.stop()));
  const folds = workers.map((w) =>
    (w.stderr + w.stdout)
      .split('\n')
      .filter((l) => l.includes('"msg":"folded"'))
      .map((l) => JSON.parse(l) as { id: string; dup: boolean; batch: string }),
  );
  expect(folds.map((f) => f.filter((x) => !x.dup).length).every((n) => n > 0)).toBe(true);
  const fresh = new Map<string, number>();
  for (const f of folds.flat()) if (!f.dup) fresh.set(f.id, (fresh.get(f.id) ?? 0) + 1);
  expect([...fresh].filter(([, n]) => n !== 1)).toEqual([]);
  expect(fresh.size).toBe(ROUNDS * CLUSTERS * NODES * 4);
  // Each repeat has a cause the test saw: its batch run again (same batch id), or its node sending it again.
  const repeats = folds.flat().filter((x) => x.dup);
  expect(repeats.filter((x) => !fresh.has(x.id))).toEqual([]);
  const firstBatch = new Set(
    folds
      .flat()
      .filter((x) => !x.dup)
      .map((x) => `${x.batch} ${x.id}`),
  );
  const rerun = repeats.filter((x) => firstBatch.has(`${x.batch} ${x.id}`)).length;
  expect(repeats.length - rerun).toBeLessThanOrEqual(resent.length);
  if (repeats.length > 0)
    console.log(
      `${repeats.length} reports reached the workers again and were folded as duplicates: ${rerun} in a batch run again, ${repeats.length - rerun} sent again by their node (${resent.length} resends, e.g. ${resent[0] ?? '-'})`,
    );
});
