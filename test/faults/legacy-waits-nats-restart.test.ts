import http from 'node:http';
import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { post, startTestScheduler } from '../scheduler/scheduler-helpers';
import { note } from './summary';

/**
 * Issue 23's shared subscriptions under a fault: the scheduler holds many
 * legacy long polls (lkp's wget) on ONE NATS subscription per subject; the
 * NATS server restarts while they are held. The scheduler's connection
 * reconnects and resubscribes, each open group sends its report again, and
 * one release still answers every held request, each with its own answer.
 */
const lab = useTestServers({ workerProcess: true });
const { res } = lab;
const LEGACY = '/~lkp/cgi-bin/lkp-cluster-sync';
const HELD = 30;

/** One GET on its own connection, as lkp's wget makes it; resolves with status and body. */
function wget(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test(`NATS restarted while the scheduler holds ${HELD} message waits and ${HELD} barrier waits on shared subscriptions: one release answers each`, async () => {
  const scheduler = await startTestScheduler(res, lab.config, { longPollMs: 600_000 });
  const submitted = await post(
    scheduler.url,
    JSON.stringify({ job: 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n', cluster_spec: 'nodes:\n  nr--1: { roles: [server] }\n  nr--2: { roles: [client] }\n' }),
    'application/json',
  );
  expect(submitted.status).toBe(200);
  const [a, b] = submitted.body as { job_id: string }[];
  const at = (job: string, query: string): string => `${scheduler.url}${LEGACY}?job_id=${job}&${query}`;

  // Node a waits on message "ip" and at the start barrier, HELD requests each; node b has not come yet.
  const messages = Array.from({ length: HELD }, () => wget(at(a!.job_id, 'state=wait&msg=ip')));
  const starts = Array.from({ length: HELD }, () => wget(at(a!.job_id, 'state=wait_start')));
  await eventually(() => scheduler.shared.waiting === 2 * HELD, `all ${2 * HELD} requests held`);

  await lab.servers.nats.restart();
  // Still held: nothing answered them while NATS was away.
  expect(scheduler.shared.waiting).toBe(2 * HELD);

  // Node b releases both: its send, then its own wait_start (answered once both nodes are at start).
  expect(await wget(at(b!.job_id, 'state=send&msg=ip&server-ip=10.0.0.1'))).toEqual({ status: 200, body: 'ok' });
  const bStart = await wget(at(b!.job_id, 'state=wait_start'));
  expect(bStart).toMatchObject({ status: 200 });
  expect(bStart.body.trim()).toBe('start');

  const got = await Promise.all([...messages, ...starts]);
  expect(got.slice(0, HELD).map((r) => [r.status, r.body])).toEqual(Array(HELD).fill([200, 'ok\nserver-ip=10.0.0.1']));
  expect(got.slice(HELD).map((r) => [r.status, r.body.trim()])).toEqual(Array(HELD).fill([200, 'start']));
  expect(scheduler.shared.waiting).toBe(0);
  note(
    `NATS restarted while the scheduler held ${HELD} legacy message waits and ${HELD} barrier waits (one shared subscription per subject)`,
    `after the restart one send and one wait_start released all ${2 * HELD}, each with its answer; 0 left held`,
  );
});

test('a report still retrying when its NATS connection is closed (its process stopping) ends at once, not at its 10-minute give-up', async () => {
  // A prefix no worker listens on: the report is retried (no responders) until something stops it.
  const nc = await res.nats(lab.config);
  const client = new NodeClient(nc, new Subjects('nobody-listens'), { cluster: 'cs-1', job: '1', token: 't' }, { giveUpAfterMs: 600_000 });
  const sending = client.report('wait_start').catch((err: Error) => err);
  await nc.close();
  // It used to retry against the closed connection for 10 minutes, keeping a stopping scheduler alive.
  const err = await sending;
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).message).toMatch(/^the NATS connection was closed while sending wait_start: /);
});
