import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import type { SchedulerHandle } from '../../src/scheduler/start';
import { note } from '../faults/summary';
import { post, startTestScheduler } from '../scheduler/scheduler-helpers';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * The legacy endpoint's `write_state` takes only what each field claims to
 * be: lkp-tests' job.sh writes every `roles_ip` line into /etc/hosts and the
 * environment of every node of the cluster, so `ip=6.6.6.6 gitee.com` must
 * never reach them. A bad field is a 400 naming it, and nothing is written.
 */
const lab = useTestServers({ workers: true });
const { res } = lab;
let scheduler: SchedulerHandle;

beforeAll(async () => {
  scheduler = await startTestScheduler(res, lab.config, { longPollMs: 2000 });
});

/** The server has two direct NICs (so two direct IPs); the client none. */
const SPEC = 'nodes:\n  box--1: { roles: [server], macs: [ec:f4:bb:cb:7b:92, ec:f4:bb:cb:7b:93] }\n  box--2: { roles: [client] }\n';
const JOB = 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n';

async function submit(): Promise<[SubmitMessage, SubmitMessage]> {
  const r = await post(scheduler.url, JSON.stringify({ job: JOB, cluster_spec: SPEC }), 'application/json');
  expect(r.status).toBe(200);
  return r.body as [SubmitMessage, SubmitMessage];
}

async function ask(query: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${scheduler.url}/~lkp/cgi-bin/lkp-cluster-sync?${query}`);
  return { status: r.status, text: await r.text() };
}

test('ip=6.6.6.6%20gitee.com is refused with 400, nothing is written, and roles_ip never carries it', async () => {
  const [server, client] = await submit();
  const before = await ask(`job_id=${server.job_id}`);
  const r = await ask(`job_id=${server.job_id}&state=write_state&node_roles=server&ip=6.6.6.6%20gitee.com`);
  expect(r).toEqual({ status: 400, text: 'query: ip: must be one IPv4 or IPv6 address\n' });
  expect(await ask(`job_id=${server.job_id}`)).toEqual(before);
  const rolesIp = await ask(`job_id=${client.job_id}&state=roles_ip`);
  expect(rolesIp.text).not.toContain('gitee');
  expect(rolesIp.text).toBe(['direct_server_ips=192.168.222.1 192.168.222.2', 'server=', 'direct_client_ips=', 'client='].join('\n'));
  note('legacy write_state with ip=6.6.6.6%20gitee.com', `400 "${r.text.trim()}"; the state is unchanged; roles_ip has no gitee.com`);
});

test.each([
  ['ip: two addresses', 'node_roles=server&ip=6.6.6.6+7.7.7.7', 'ip: must be one IPv4 or IPv6 address'],
  ['ip: a host name', 'ip=gitee.com', 'ip: must be one IPv4 or IPv6 address'],
  ['ip: an address and a hosts line', 'ip=10.0.0.1%09evil.example', 'ip: must be one IPv4 or IPv6 address'],
  ['direct_ips: a host name among them', 'direct_ips=192.168.222.1+gitee.com', 'direct_ips: must be IPv4 addresses separated by spaces'],
  ['direct_ips: an IPv6 address', 'direct_ips=192.168.222.1+::1', 'direct_ips: must be IPv4 addresses separated by spaces'],
  ['direct_ips: fewer than the node has MACs', 'direct_ips=192.168.222.1', 'direct_ips: must be 2 IPv4 addresses, one per MAC of this node, not 1'],
  ['direct_ips: more than the MACs it sends', 'direct_macs=ec:f4:bb:cb:7b:92&direct_ips=192.168.222.1+192.168.222.2', 'direct_ips: must be 1 IPv4 address, one per MAC of this node, not 2'],
  ['direct_macs: not a MAC', 'direct_macs=ec:f4:bb:cb:7b:92+evil', 'direct_macs: must be MAC addresses (like ec:f4:bb:cb:7b:92) separated by spaces'],
  ["node_roles: another node's role", 'node_roles=client', 'node_roles: must be this node\'s roles "server" (or empty), not "client"'],
  ['node_roles: its role plus one more', 'node_roles=server+client', 'node_roles: must be this node\'s roles "server" (or empty), not "server client"'],
  ['node_roles: a hosts line', 'node_roles=server%3D6.6.6.6', 'node_roles: must be role names (letters, digits, "_", "." and "-") separated by spaces'],
])('write_state with %s: 400 naming the field, nothing written', async (what, query, message) => {
  const [server] = await submit();
  const before = await ask(`job_id=${server.job_id}`);
  const ip = /(^|&)ip=/.test(query) ? '' : 'ip=10.0.0.1&';
  const r = await ask(`job_id=${server.job_id}&state=write_state&${ip}${query}`);
  expect(r).toEqual({ status: 400, text: `query: ${message}\n` });
  expect(await ask(`job_id=${server.job_id}`)).toEqual(before);
  note(`legacy write_state, ${what} (${query})`, `400 "${r.text.trim()}"; nothing written`);
});

test("what lkp-tests sends is recorded: its roles, an IPv4 or IPv6 address, one direct IP per MAC; empty roles keep the split's", async () => {
  const [server, client] = await submit();
  const w = await ask(`job_id=${server.job_id}&state=write_state&node_roles=server&ip=fd00::5&direct_macs=ec:f4:bb:cb:7b:92+ec:f4:bb:cb:7b:93&direct_ips=192.168.222.1+192.168.222.2`);
  expect(w.status).toBe(200);
  expect(JSON.parse(w.text)[server.job_id]).toMatchObject({ roles: 'server', ip: 'fd00::5', direct_ips: '192.168.222.1 192.168.222.2' });
  const c = await ask(`job_id=${client.job_id}&state=write_state&node_roles=&ip=10.1.0.2&direct_macs=&direct_ips=`);
  expect(c.status).toBe(200);
  expect(JSON.parse(c.text)[client.job_id]).toMatchObject({ roles: 'client', ip: '10.1.0.2', direct_ips: '' });
  expect((await ask(`job_id=${client.job_id}&state=roles_ip`)).text).toBe(['direct_server_ips=192.168.222.1 192.168.222.2', 'server=fd00::5', 'direct_client_ips=', 'client=10.1.0.2'].join('\n'));
});
