import http from 'node:http';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import type { SchedulerHandle } from '../../src/scheduler/start';
import { startScheduler } from '../../src/scheduler/start';
import { note } from '../faults/summary';
import { CLUSTER_DIR } from '../helpers/fixtures';
import { useTestServers } from '../helpers/use-test-servers';
import { TOKEN, post, startTestScheduler } from '../scheduler/scheduler-helpers';

/**
 * `scheduler --legacy-allow` closes the legacy lkp endpoint (Compass-CI's
 * unauthenticated protocol) to all but a lab's addresses, and
 * `--trusted-proxy` names the proxies whose X-Forwarded-For is believed.
 * Clients come from other loopback addresses (127.0.0.2, .3, ...) by binding
 * their side of the connection, so the scheduler sees different peers.
 */
const lab = useTestServers({ workers: true });
const { res } = lab;

/** GET on the legacy endpoint from `from` (a loopback address), with optional headers. */
function ask(base: string, query: string, from: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/~lkp/cgi-bin/lkp-cluster-sync?${query}`, { localAddress: from, headers }, (r) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (d: string) => (text += d));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
    });
    req.on('error', reject);
  });
}

async function submit(scheduler: SchedulerHandle): Promise<SubmitMessage[]> {
  const r = await post(
    scheduler.url,
    JSON.stringify({ job: 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n', cluster_spec: 'nodes:\n  box--1: { roles: [server] }\n  box--2: { roles: [client] }\n' }),
    'application/json',
  );
  expect(r.status).toBe(200);
  return r.body as SubmitMessage[];
}

async function stateOf(cluster: string): Promise<string | null> {
  return lab.workers.store.redis.hget(lab.workers.store.keys.clusterState, cluster);
}

test('by default the legacy endpoint is open to every address, as Compass-CI', async () => {
  const scheduler = await startTestScheduler(res, lab.config);
  const [a] = await submit(scheduler);
  const r = await ask(scheduler.url, `job_id=${a!.job_id}&state=write_state&ip=127.0.0.3`, '127.0.0.3');
  expect(r.status).toBe(200);
  note('legacy write_state from 127.0.0.3, scheduler without --legacy-allow', `${r.status}: open, as Compass-CI`);
});

test('--legacy-allow 127.0.0.2/32: that address is served; 127.0.0.3 gets 403 and its failed aborts nothing', async () => {
  const scheduler = await startTestScheduler(res, lab.config, { legacyAllow: ['127.0.0.2/32'] });
  const [a, b] = await submit(scheduler);
  const before = await stateOf(a!.cluster);
  const refused = await ask(scheduler.url, `job_id=${a!.job_id}&state=failed`, '127.0.0.3');
  expect(refused).toEqual({ status: 403, text: 'address 127.0.0.3 may not use the legacy endpoint (scheduler --legacy-allow)\n' });
  const wrote = await ask(scheduler.url, `job_id=${b!.job_id}&state=write_state&ip=10.9.9.9`, '127.0.0.3');
  expect(wrote.status).toBe(403);
  expect(await stateOf(a!.cluster)).toBe(before);

  const served = await ask(scheduler.url, `job_id=${a!.job_id}&state=write_state&ip=127.0.0.2`, '127.0.0.2');
  expect(served.status).toBe(200);
  expect(JSON.parse(served.text)[a!.job_id]).toMatchObject({ ip: '127.0.0.2', state: '' });
  note('legacy state=failed from 127.0.0.3, scheduler --legacy-allow 127.0.0.2/32', `403 "${refused.text.trim()}"; cluster state unchanged; 127.0.0.2 served`);
});

test('--trusted-proxy: X-Forwarded-For is believed from the proxy only', async () => {
  const scheduler = await startTestScheduler(res, lab.config, { legacyAllow: ['10.1.0.0/16'], trustedProxies: ['127.0.0.4'] });
  const [a] = await submit(scheduler);
  const q = `job_id=${a!.job_id}`;
  // Through the proxy, for a lab address: served.
  expect((await ask(scheduler.url, q, '127.0.0.4', { 'x-forwarded-for': '10.1.2.3' })).status).toBe(200);
  // Through the proxy, for an outside address (even with a lab address forged before it): refused.
  const outside = await ask(scheduler.url, q, '127.0.0.4', { 'x-forwarded-for': '10.1.2.3, 6.6.6.6' });
  expect(outside).toEqual({ status: 403, text: 'address 6.6.6.6 may not use the legacy endpoint (scheduler --legacy-allow)\n' });
  // Not the proxy: its X-Forwarded-For is ignored and its own address judged.
  const forged = await ask(scheduler.url, q, '127.0.0.5', { 'x-forwarded-for': '10.1.2.3' });
  expect(forged).toEqual({ status: 403, text: 'address 127.0.0.5 may not use the legacy endpoint (scheduler --legacy-allow)\n' });
  note(
    'legacy requests with X-Forwarded-For, scheduler --legacy-allow 10.1.0.0/16 --trusted-proxy 127.0.0.4',
    'via 127.0.0.4 for 10.1.2.3: 200; via 127.0.0.4 for 6.6.6.6: 403; from 127.0.0.5 claiming 10.1.2.3: 403 (header ignored)',
  );
});

test.each([
  [{ legacyAllow: ['10.0.0.0/33'] }, /--legacy-allow \(env CS_LEGACY_ALLOW\): "10\.0\.0\.0\/33": the prefix length must be 0 to 32/],
  [{ legacyAllow: ['lab.example'] }, /--legacy-allow \(env CS_LEGACY_ALLOW\): "lab\.example" is not an IP address or CIDR range/],
  [{ legacyAllow: [] }, /--legacy-allow \(env CS_LEGACY_ALLOW\): give at least one address or range/],
  [{ trustedProxies: ['10.0.0.1/8/8'] }, /--trusted-proxy \(env CS_TRUSTED_PROXY\): "10\.0\.0\.1\/8\/8" is not an IP address/],
])('a bad range %j stops the scheduler with a message naming the flag', async (opts, message) => {
  await expect(startScheduler(lab.config, { apiToken: TOKEN, clusterDir: CLUSTER_DIR, port: 0, ...opts })).rejects.toThrow(message);
});
