import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { submitInline } from '../helpers/cluster';
import { CLI, CliProcess, envFor } from '../helpers/processes';
import { useTestServers } from '../helpers/use-test-servers';
import { readLog, scriptsTree } from './agent-helpers';

/**
 * LAVA MultiNode commands inside real programs: `cluster-sync node` agents
 * (built command line, one process per machine) run shell scripts that call
 * lava-send, lava-wait, lava-wait-all, lava-sync, lava-role, lava-group and
 * lava-self, against real workers, NATS and Redis.
 */

const NODE = process.execPath;
/** A stand-in for iperf: a TCP server that answers one line, started on a free port; the port on stdout. */
const FAKE_IPERF_SERVER = `require('net').createServer((c) => c.end('iperf: 941 Mbits/sec\\n')).listen(0, '127.0.0.1', function () { console.log(this.address().port); })`;

const tree = scriptsTree({
  // LAVA's "Example 2: iperf client-server test", as two lkp test programs.
  'tests/iperf-server': `#!/bin/sh
fifo="$work/port.$$"; mkfifo "$fifo"
"$node_bin" -e "${FAKE_IPERF_SERVER}" > "$fifo" &
srv=$!
read port < "$fifo"; rm -f "$fifo"
echo "iperf server listening on 127.0.0.1:$port"
lava-send server-ready server-ip=$node_ip port=$port || { kill $srv; exit 1; }
lava-wait client-done || { kill $srv; exit 1; }
echo "client-done: $(cat "$CS_SYNC_CACHE")"
kill $srv
`,
  'tests/iperf-client': `#!/bin/sh
lava-wait server-ready || exit 1
cat "$CS_SYNC_CACHE"
server=$(grep '^server-ip=' "$CS_SYNC_CACHE" | cut -d = -f 2)
port=$(grep '^port=' "$CS_SYNC_CACHE" | cut -d = -f 2)
result=$("$node_bin" -e "require('net').connect($port, '$server').on('data', (d) => process.stdout.write(d))")
echo "iperf -c $server -p $port: $result"
lava-send client-done result="$(echo $result | cut -d ' ' -f 2)" || exit 1
`,
  // LAVA's "Example 3: variable number of clients", with lava-wait-all ROLE.
  'tests/sync-node': `#!/bin/sh
echo "$(lava-self) before-ready" >> "$log"
lava-sync ready || exit 1
echo "$(lava-self) after-ready" >> "$log"
if [ "$(lava-role)" = server ]; then
  lava-wait-all results client || exit 1
  cp "$CS_SYNC_CACHE" "$work/results"
  lava-group > "$work/group"; lava-group client > "$work/clients"; lava-role list > "$work/roles"
  lava-group nobody; echo "lava-group nobody: $?" >> "$log"
else
  lava-send results from=$(lava-self) || exit 1
fi
lava-sync done || exit 1
echo "$(lava-self) after-done" >> "$log"
`,
  // A daemon that waits for a message nobody sends. The wait runs in a session of its own and the daemon
  // ignores SIGTERM, so that stopping the daemon does not stop the wait before it can record its answer.
  'daemon/waits-forever': `#!/bin/sh
trap '' TERM
setsid sh -c 'lava-wait never-sent 2>> "$log"; echo "lava-wait exit $?" >> "$log"' &
wait $!
`,
  'tests/fails': '#!/bin/sh\necho "failing on purpose"\nexit 1\n',
  'tests/times-out': `#!/bin/sh
lava-wait --timeout 1s nobody-sends 2>> "$log"; echo "lava-wait exit $?" >> "$log"
lava-send 'bad id' 2>> "$log"; echo "lava-send exit $?" >> "$log"
lava-wait-all x nobody-has-this-role 2>> "$log"; echo "lava-wait-all exit $?" >> "$log"
lava-send ok 2>> "$log"; echo "lava-send exit $?" >> "$log"
"$node_bin" "$cs_cli" wait-all --timeout 30s ok 2>> "$log"; echo "cluster-sync wait-all exit $? cache $(cat "$CS_SYNC_CACHE" | wc -l)" >> "$log"
"$node_bin" "$cs_cli" send ok k=v 2>> "$log"; echo "cluster-sync send exit $?" >> "$log"
"$node_bin" "$cs_cli" wait ok 2>> "$log"; echo "cluster-sync wait: $(cat "$CS_SYNC_CACHE")" >> "$log"
`,
});

const lab = useTestServers({ per: 'test', workers: true });
const { res } = lab;
let work: string;
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'cs-lava-'));
});

/** An agent process; `machine` names it when several agents of one testbox share this host (each is a machine of its own). */
function agent(testbox: string, machine?: string): CliProcess {
  const id = machine === undefined ? [] : ['--machine-id', machine];
  return res.add(new CliProcess(['node', '--testbox', testbox, '--scripts', tree, '--once', '--ip', '127.0.0.1', '--poll-ms', '50', ...id], envFor(lab.config)), (x) => x.stop());
}

/** A job whose every role gets its own cache file (two agents share this machine's /tmp). */
function job(roles: Record<string, string>): string {
  const blocks = Object.entries(roles)
    .map(([role, program]) => `if role ${role}:\n  CS_SYNC_CACHE: ${work}/${role}.cache\n  ${program}:\n`)
    .join('');
  return `suite: lava\ncluster: cs-test\nlog: ${work}/log\nwork: ${work}\nnode_bin: ${NODE}\ncs_cli: ${CLI}\n${blocks}`;
}

test('the iperf pattern: the server sends server-ready with its address, the client waits, runs, sends client-done', async () => {
  await submitInline(res, lab.config, job({ server: 'iperf-server', client: 'iperf-client' }), 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n');
  const srv = agent('srv');
  const cli = agent('cli');
  expect(await cli.exited).toBe(0);
  expect(await srv.exited).toBe(0);
  expect(cli.stdout).toMatch(/\[iperf-client\] port=\d+\n.*\[iperf-client\] server-ip=127\.0\.0\.1/);
  expect(cli.stdout).toMatch(/\[iperf-client\] iperf -c 127\.0\.0\.1 -p \d+: iperf: 941 Mbits\/sec/);
  expect(cli.stdout).toMatch(/lava-wait server-ready ok port=\d+ server-ip=127\.0\.0\.1/);
  expect(srv.stdout).toMatch(/\[iperf-server\] client-done: result=941/);
  expect(srv.stdout).toMatch(/end +passed/);
});

test('a variable number of clients: lava-sync ready / done hold every node, lava-wait-all ROLE collects the clients, lava-group and lava-role answer from the node job', async () => {
  const spec = 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n  cli--2: { roles: [client] }\n  cli--3: { roles: [client] }\n';
  const [c] = await submitInline(res, lab.config, job({ server: 'sync-node', client: 'sync-node' }), spec);
  const jobs = c!.jobs.map((j) => j.job_id);
  const agents = [agent('srv'), agent('cli', 'cli-a'), agent('cli', 'cli-b'), agent('cli', 'cli-c')];
  expect(await Promise.all(agents.map((a) => a.exited))).toEqual([0, 0, 0, 0]);
  const log = readLog(path.join(work, 'log'));
  // Nobody passed `ready` before everybody reached it, and nobody passed `done` before everybody did.
  const lastBefore = Math.max(...log.map((l, i) => (l.endsWith('before-ready') ? i : -1)));
  const firstAfter = log.findIndex((l) => l.endsWith('after-ready'));
  expect(log.filter((l) => l.endsWith('before-ready'))).toHaveLength(4);
  expect(lastBefore).toBeLessThan(firstAfter);
  expect(log.filter((l) => l.endsWith('after-done'))).toHaveLength(4);
  expect(log).toContain('lava-group nobody: 1');
  const results = readFileSync(path.join(work, 'results'), 'utf8').trim().split('\n').sort();
  expect(results).toEqual(
    jobs
      .slice(1)
      .map((j) => `${j}:from=${j}`)
      .sort(),
  );
  expect(readFileSync(path.join(work, 'group'), 'utf8')).toBe(
    `${jobs[0]}\tserver\n${jobs
      .slice(1)
      .map((j) => `${j}\tclient`)
      .join('\n')}\n`,
  );
  expect(readFileSync(path.join(work, 'clients'), 'utf8')).toBe(`${jobs.slice(1).join('\n')}\n`);
  expect(readFileSync(path.join(work, 'roles'), 'utf8')).toBe('server client\n');
});

test('a waiter hears abort when another node fails: lava-wait exits 3 and says why', async () => {
  await submitInline(res, lab.config, job({ server: 'waits-forever', client: 'fails' }), 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n');
  // The client's test fails after the ready barrier; the server's daemon waits from before it (a wait that
  // only starts after the abort hears it too).
  const srv = agent('srv');
  const cli = agent('cli');
  expect(await cli.exited).not.toBe(0);
  expect(await srv.exited).toBe(3);
  const log = readLog(path.join(work, 'log'));
  expect(log).toContain('lava-wait exit 3');
  expect(log.find((l) => l.startsWith('lava-wait never-sent:'))).toMatch(/^lava-wait never-sent: cluster aborted: node \S+ \(client\) reported failed: /);
});

test('a wait past --timeout exits 4 and aborts nothing; bad usage exits 2 with the reason; cluster-sync send|wait|wait-all work the same', async () => {
  await submitInline(res, lab.config, job({ server: 'times-out' }), 'nodes:\n  srv--1: { roles: [server] }\n');
  const srv = agent('srv');
  expect(await srv.exited).toBe(0);
  const log = readLog(path.join(work, 'log'));
  expect(log).toEqual([
    'lava-wait nobody-sends: timed out after 1.00s: no node sent it',
    'lava-wait exit 4',
    'lava-send: message ID "bad id": 1 to 253 letters, digits, "_", "." or "-" only',
    'lava-send exit 2',
    expect.stringMatching(/^lava-wait-all x: no node of this cluster has role nobody-has-this-role \(roles: server\)$/),
    'lava-wait-all exit 2',
    'lava-send exit 0',
    'cluster-sync wait-all exit 0 cache 0',
    'cluster-sync send exit 0',
    'cluster-sync wait: k=v',
  ]);
});
