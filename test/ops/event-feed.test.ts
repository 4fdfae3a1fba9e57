import { connect } from 'nats';
import { Subjects } from '../../src/bus/subjects';
import { encodeJson } from '../../src/bus/connect';
import { Keys } from '../../src/core/keys';
import type { ClusterEvent } from '../../src/fold/outcome';
import { EventFeed } from '../../src/ops/event-feed';
import type { EventSource } from '../../src/ops/event-feed';
import { compareStreamIds } from '../../src/ops/stream-id';
import { nodesJob, submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { nodeClients } from '../helpers/cluster';
import { useTestServers } from '../helpers/use-test-servers';
import { allWait } from './ops-helpers';

const lab = useTestServers({ per: 'test', workers: true });
const { res } = lab;

interface Seen {
  ev: ClusterEvent;
  source: EventSource;
  /** Delivered before start() resolved, i.e. during the replay or at the seam. */
  early: boolean;
}

async function allIds(since: number): Promise<string[]> {
  const redis = res.redis(lab.config);
  const entries = (await redis.xrange(new Keys(lab.config.keyPrefix).allEvents, `${since}-0`, '+')) as [string, string[]][];
  return entries.map(([id]) => id);
}

test('replay then live: events that arrive during the replay are shown once, none is lost at the seam', async () => {
  const t0 = Date.now() - 1;
  const { job, spec } = nodesJob(2);
  const [a] = await submitInline(res, lab.config, job, spec);
  const [b] = await submitInline(res, lab.config, job, spec);
  const na = await nodeClients(res, lab.config, a!);
  const nb = await nodeClients(res, lab.config, b!);
  expect(await allWait(na, 'wait_start')).toEqual(['start', 'start']);

  const nc = await res.nats(lab.config);
  const redis = res.redis(lab.config);
  // A probe on the feed's connection: once it has an event, the feed's subscription has it too.
  const probed = new Set<string>();
  const probe = nc.subscribe(new Subjects(lab.config.subjectPrefix).allEvents, { callback: (_e, m) => probed.add((JSON.parse(m.string()) as ClusterEvent).id) });
  res.add(probe, async (s) => s.unsubscribe());
  await nc.flush();
  const untilProbed = async (cluster: string, barrier: string) => {
    const ids = (await allIds(t0)).slice(-3);
    await eventually(() => ids.every((id) => probed.has(id)), `the ${barrier} events of ${cluster} on NATS`);
    return ids;
  };

  let duringFirstPage: string[] = [];
  let afterLastPage: string[] = [];
  let pages = 0;
  const seen: Seen[] = [];
  let started = false;
  const feed = res.add(
    new EventFeed({
      redis,
      nc,
      keys: new Keys(lab.config.keyPrefix),
      subjects: new Subjects(lab.config.subjectPrefix),
      sinceMs: t0,
      pageSize: 2,
      onReplayPage: async (page, last) => {
        pages++;
        if (page === 0) {
          // Written while the replay reads: later pages read them again, and NATS delivers them to the buffer.
          expect(await allWait(na, 'wait_ready')).toEqual(['ready', 'ready']);
          duringFirstPage = await untilProbed(a!.cluster, 'ready');
        }
        if (last && afterLastPage.length === 0) {
          // Written after the replay's last read: only the buffer has them.
          expect(await allWait(nb, 'wait_start')).toEqual(['start', 'start']);
          afterLastPage = await untilProbed(b!.cluster, 'start');
        }
      },
    }),
    (f) => f.close(),
  );
  const { replayed } = await feed.start((ev, source) => seen.push({ ev, source, early: !started }));
  started = true;
  expect(pages).toBeGreaterThan(3);

  // Live after the seam.
  expect(await allWait(na, 'finished')).toEqual(['finish', 'finish']);
  const expected = await allIds(t0);
  await eventually(() => seen.length >= expected.length, `${expected.length} events`);

  const ids = seen.map((s) => s.ev.id);
  expect(new Set(ids).size).toBe(ids.length); // no duplicate
  expect([...ids].sort(compareStreamIds)).toEqual(expected); // no gap
  const by = new Map(seen.map((s) => [s.ev.id, s]));
  for (const id of duringFirstPage) expect(by.get(id)?.source).toBe('replay');
  for (const id of afterLastPage) expect(by.get(id)).toMatchObject({ source: 'live', early: true });
  expect(replayed).toBe(seen.filter((s) => s.source === 'replay').length);
  // Replayed events come in stream order, starting with the two submissions.
  const replayedIds = seen.filter((s) => s.source === 'replay').map((s) => s.ev.id);
  expect(replayedIds).toEqual([...replayedIds].sort(compareStreamIds));
  expect(seen.slice(0, 2).map((s) => s.ev.type)).toEqual(['submitted', 'submitted']);
  expect(seen.at(-1)?.ev).toMatchObject({ type: 'resolution', cluster: a!.cluster, barrier: 'finish', result: 'finish' });
  expect(seen.at(-1)).toMatchObject({ source: 'live', early: false });
});

test('a live feed drops an event published again and ignores what is not an event', async () => {
  const { job, spec } = nodesJob(2);
  const [a] = await submitInline(res, lab.config, job, spec);
  const nodes = await nodeClients(res, lab.config, a!);
  const nc = await res.nats(lab.config);
  const invalid: string[] = [];
  const seen: ClusterEvent[] = [];
  const subjects = new Subjects(lab.config.subjectPrefix);
  const feed = res.add(new EventFeed({ redis: res.redis(lab.config), nc, keys: new Keys(lab.config.keyPrefix), subjects, cluster: a!.cluster, onInvalid: (r) => invalid.push(r) }), (f) => f.close());
  expect(await feed.start((ev) => seen.push(ev))).toEqual({ replayed: 0 });
  await allWait(nodes, 'wait_start');
  await eventually(() => seen.some((e) => e.type === 'resolution'), 'the start resolution');
  expect(seen.map((e) => e.type)).toEqual(['report', 'report', 'resolution']);

  const other = res.add(await connect({ servers: lab.config.natsUrl }), (c) => c.close());
  other.publish(subjects.event(a!.cluster), encodeJson(seen[2]));
  other.publish(subjects.event(a!.cluster), encodeJson({ hello: 'world' }));
  other.publish(subjects.event(a!.cluster), new TextEncoder().encode('not json'));
  await allWait(nodes, 'wait_ready');
  await eventually(() => seen.length === 6, 'the ready events');
  expect(seen.map((e) => e.type)).toEqual(['report', 'report', 'resolution', 'report', 'report', 'resolution']);
  expect(invalid).toEqual([`not an event on ${subjects.event(a!.cluster)}`, `not an event on ${subjects.event(a!.cluster)}`]);
});
