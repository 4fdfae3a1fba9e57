import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import type { ConnectionConfig } from '../../src/core/config';
import { freePort } from '../../src/services/local-servers';
import { startWorkers } from '../../workers';
import { submitInline } from '../helpers/cluster';
import { CLI, ROOT, assertBuilt, envFor } from '../helpers/processes';
import { Resources, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';

/*
 * Two agents in two network namespaces joined by a veth pair whose ends
 * carry the MACs of the cluster spec. Each agent binds its direct address to
 * the device with its MAC; the client test reaches the server's daemon over
 * the direct addresses. Each namespace also gets a management veth to the
 * host, where a small TCP relay forwards to the test's loopback NATS.
 */

const sfx = randomBytes(2).toString('hex');
const octet = 100 + (parseInt(sfx, 16) % 100);
const NS = { a: `csa${sfx}`, b: `csb${sfx}` };
const MAC = { a: `02:c5:${sfx.slice(0, 2)}:${sfx.slice(2)}:00:01`, b: `02:c5:${sfx.slice(0, 2)}:${sfx.slice(2)}:00:02` };
const MGMT = { a: `10.231.${octet}.1`, b: `10.232.${octet}.1` };

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Whether this machine lets us create a network namespace; why not, when it does not. */
function probeNetns(): string | undefined {
  const name = `csprobe${sfx}`;
  try {
    ip('netns', 'add', name);
    ip('netns', 'del', name);
    return undefined;
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') return 'the `ip` command is missing (install iproute2)';
    return `creating a network namespace is not permitted here (${e.stderr?.trim() || String(err)}): run the tests as root, or with CAP_NET_ADMIN and CAP_SYS_ADMIN`;
  }
}
/** Not skipped when missing (the project's rule): the test fails and says what it needs. */
const notPermitted = probeNetns();

let servers: TestServers;
const res = new Resources();
let config: ConnectionConfig;
const relays: net.Server[] = [];
const children: ChildProcess[] = [];

function relay(host: string, port: number, target: number): Promise<void> {
  const srv = net.createServer((sock) => {
    const up = net.connect(target, '127.0.0.1');
    sock.pipe(up).pipe(sock);
    sock.on('error', () => up.destroy());
    up.on('error', () => sock.destroy());
  });
  relays.push(srv);
  return new Promise((resolve) => srv.listen(port, host, () => resolve()));
}

beforeAll(async () => {
  if (notPermitted) return;
  servers = await startTestServers();
  config = servers.config();
  res.add(await startWorkers(config), (w) => w.close());
  ip('netns', 'add', NS.a);
  ip('netns', 'add', NS.b);
  ip('link', 'add', `da${sfx}`, 'address', MAC.a, 'type', 'veth', 'peer', 'name', `db${sfx}`, 'address', MAC.b);
  ip('link', 'set', `da${sfx}`, 'netns', NS.a);
  ip('link', 'set', `db${sfx}`, 'netns', NS.b);
  for (const side of ['a', 'b'] as const) {
    const host = MGMT[side];
    const inner = host.replace(/\.1$/, '.2');
    ip('link', 'add', `h${side}${sfx}`, 'type', 'veth', 'peer', 'name', `m${side}${sfx}`);
    ip('link', 'set', `m${side}${sfx}`, 'netns', NS[side]);
    ip('addr', 'add', `${host}/30`, 'dev', `h${side}${sfx}`);
    ip('link', 'set', `h${side}${sfx}`, 'up');
    ip('-n', NS[side], 'addr', 'add', `${inner}/30`, 'dev', `m${side}${sfx}`);
    ip('-n', NS[side], 'link', 'set', `m${side}${sfx}`, 'up');
    ip('-n', NS[side], 'link', 'set', 'lo', 'up');
  }
});

afterAll(async () => {
  if (notPermitted) return;
  for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  await Promise.all(relays.map((r) => new Promise((resolve) => r.close(resolve))));
  await res.closeAll();
  for (const ns of Object.values(NS)) {
    try {
      ip('netns', 'del', ns); // removes the veths inside, and with them their host-side peers
    } catch {
      /* already gone */
    }
  }
  await servers.stop();
});

function agentIn(ns: string, testbox: string, natsUrl: string): { child: ChildProcess; out: () => string; code: Promise<number | null> } {
  assertBuilt();
  let out = '';
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'node', '--testbox', testbox, '--scripts', path.join(ROOT, 'examples/lkp'), '--once', '--poll-ms', '50'], {
    env: envFor({ ...config, natsUrl }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out, code: new Promise((r) => child.once('close', (code) => r(code))) };
}

test('agents in two namespaces bind their direct addresses to the devices with their MACs, and the client reaches the server over them', async () => {
  if (notPermitted) throw new Error(`this test needs network namespaces and veth pairs: ${notPermitted}`);
  const natsPort = servers.nats.port;
  const relayPort = await freePort();
  await relay(MGMT.a, relayPort, natsPort);
  await relay(MGMT.b, relayPort, natsPort);
  const port = await freePort();
  const job = `suite: dnet\ncluster: cs-dnet\nport: ${port}\nuse_direct: 1\nif role server:\n  echo-server:\nif role client:\n  echo-client:\n`;
  const spec = `nodes:\n  dsrv--1: { roles: [server], macs: ["${MAC.a}"] }\n  dcli--1: { roles: [client], macs: ["${MAC.b}"] }\n`;
  const [cluster] = await submitInline(res, config, job, spec);
  expect(cluster!.jobs.map((j) => j.direct_ips)).toEqual(['192.168.222.1', '192.168.222.2']);

  const srv = agentIn(NS.a, 'dsrv', `nats://${MGMT.a}:${relayPort}`);
  const cli = agentIn(NS.b, 'dcli', `nats://${MGMT.b}:${relayPort}`);
  const codes = await Promise.all([srv.code, cli.code]);
  expect({ codes, server: srv.out(), client: cli.out() }).toMatchObject({ codes: [0, 0] });

  expect(cli.out()).toContain(`connected to server 192.168.222.1:${port}`);
  expect(cli.out()).toMatch(/reply "pong ping cs-\d+ from server@10\.231\.\d+\.2": contains "pong", passed/);
  expect(srv.out()).toMatch(/got "ping cs-\d+" from 192\.168\.222\.2/);
  expect(srv.out()).toMatch(new RegExp(`direct_ips +ok da${sfx} 192\\.168\\.222\\.1`));
  // The agent reported the first address `hostname -I` gave inside its namespace.
  expect(cli.out()).toContain(`server=${MGMT.a.replace(/\.1$/, '.2')}`);
  const addrs = (ns: string, dev: string) =>
    (JSON.parse(ip('-n', ns, '-j', 'addr', 'show', 'dev', dev)) as { addr_info: { local: string; prefixlen: number }[] }[])[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
  expect(addrs(NS.a, `da${sfx}`)).toContain('192.168.222.1/24');
  expect(addrs(NS.b, `db${sfx}`)).toContain('192.168.222.2/24');
});
