import { Subjects } from '../../src/bus/subjects';
import { decodeText } from '../../src/bus/connect';
import type { ClusterEvent } from '../../src/fold/outcome';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { post, startTestScheduler } from './scheduler-helpers';

const lab = useTestServers();
const { res } = lab;

test('a submit is announced on the event subject at once, with the id it has in the event log', async () => {
  const config = lab.servers.config();
  const scheduler = await startTestScheduler(res, config);
  const nc = await res.nats(config);
  const heard: ClusterEvent[] = [];
  nc.subscribe(new Subjects(config.subjectPrefix).allEvents, { callback: (_e, m) => heard.push(JSON.parse(decodeText(m.data)) as ClusterEvent) });
  await nc.flush();
  const answer = await post(scheduler.url, 'suite: t\ncluster: cs-vm-2p16g\nif role server:\n  srv:\nif role client:\n  cli:\n', 'application/yaml');
  expect(answer.status).toBe(200);
  const event = await eventually(() => heard.find((e) => e.type === 'submitted'), 'the submitted event');
  expect(event).toMatchObject({ type: 'submitted', cluster: 'cs-1', nodes: 2, roles: 'server client', spec: 'cs-vm-2p16g' });
  const redis = res.redis(config);
  const logged = await redis.xrange(`${config.keyPrefix}cs/cluster/cs-1/events`, '-', '+');
  expect(logged.map(([id]) => id)).toEqual([event.id]);
});
