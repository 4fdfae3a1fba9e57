import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SubmittedCluster } from '../../src/cluster/submit';
import { submitInline } from '../helpers/cluster';
import { CliProcess, ROOT, envFor } from '../helpers/processes';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * LAVA MultiNode calls from unmodified lkp nodes: shell scripts (dash) that
 * source examples/lkp/lib/lava-multinode.sh and ask the legacy endpoint of the
 * built `cluster-sync scheduler` (a 1 s long poll, so waits see `retry`),
 * against real workers, NATS and Redis.
 */
const SNIPPET = path.join(ROOT, 'examples/lkp/lib/lava-multinode.sh');
const lab = useTestServers({ workers: true });
const { res } = lab;
let port: string;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cs-lava-legacy-'));
  const scheduler = res.add(new CliProcess(['scheduler', '--port', '0', '--cluster-dir', dir, '--long-poll', '1'], envFor(lab.config, { CS_API_TOKEN: 'lava-legacy-token-0123456789' })), (s) =>
    s.stop(),
  );
  [, port] = (await scheduler.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/)) as unknown as [string, string];
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface ShellNode {
  stdout: string;
  stderr: string;
  cache: string;
  exited: Promise<number | null>;
}

/** Runs `script` in dash with the snippet sourced and lkp's job environment for node job `job`. */
function shell(c: SubmittedCluster, index: number, script: string, extra: Record<string, string> = {}): ShellNode {
  const job = c.jobs[index]!;
  const cache = path.join(dir, `${job.job_id}.cache`);
  const child = spawn('dash', ['-c', `. ${SNIPPET}\n${script}`], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LKP_SERVER: '127.0.0.1',
      LKP_CGI_PORT: port,
      LKP_USER: 'lkp',
      id: job.job_id,
      cluster: 'cs-test',
      HOSTNAME: job.host,
      CS_SYNC_CACHE: cache,
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const node: ShellNode = { stdout: '', stderr: '', cache, exited: new Promise((r) => child.once('close', (code) => r(code))) };
  child.stdout.on('data', (d: Buffer) => (node.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (node.stderr += d.toString()));
  res.add(child, async (ch) => {
    if (ch.exitCode === null) ch.kill('SIGKILL');
  });
  return node;
}

const PAIR = 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n';
const JOB = 'suite: lava\ncluster: cs-test\nif role server:\n  srv:\nif role client:\n  cli:\n';

async function messageEvents(cid: string): Promise<{ op: string; msg: string; job: string }[]> {
  const entries = await lab.workers.store.redis.xrange(lab.workers.store.keys.events(cid), '-', '+');
  return entries.map(([, f]) => JSON.parse(f[1] as string) as { type: string; op: string; msg: string; job: string }).filter((e) => e.type === 'message');
}

test('the iperf pattern over the legacy endpoint: the client waits first, the server sends its address, waits for client-done', async () => {
  const [c] = await submitInline(res, lab.config, JOB, PAIR);
  const client = shell(c!, 1, 'lava_wait server-ready || exit $?\ncat "$CS_SYNC_CACHE"\nlava_send client-done result="941 Mbits/sec" || exit $?\necho sent');
  // The client's wait is registered (and answered `retry` at least once) before the server sends.
  await eventually(async () => (await messageEvents(c!.cluster)).some((e) => e.op === 'wait'), 'the client to be waiting');
  const server = shell(c!, 0, 'lava_send server-ready server-ip=10.1.2.3 port=5201 || exit $?\nlava_wait client-done || exit $?\ncat "$CS_SYNC_CACHE"');
  expect(await Promise.all([client.exited, server.exited])).toEqual([0, 0]);
  expect(client.stdout).toBe('port=5201\nserver-ip=10.1.2.3\nsent\n');
  expect(server.stdout).toBe('result=941 Mbits/sec\n');
});

test('three shell nodes: lava_sync holds each until all sent; lava_wait_all ROLE gives JOB:key=value lines', async () => {
  const spec = 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n  cli--2: { roles: [client] }\n';
  const [c] = await submitInline(res, lab.config, JOB, spec);
  const jobs = c!.jobs.map((j) => j.job_id);
  const server = shell(c!, 0, 'lava_sync ready || exit $?\necho synced\nlava_wait_all results client || exit $?\nsort "$CS_SYNC_CACHE"');
  const c1 = shell(c!, 1, 'lava_sync ready || exit $?\nlava_send results rate=10');
  await eventually(async () => (await messageEvents(c!.cluster)).filter((e) => e.msg === 'ready').length === 2, 'two nodes at sync ready');
  expect(server.stdout).toBe('');
  const c2 = shell(c!, 2, 'lava_sync ready || exit $?\nlava_send results rate=20');
  expect(await Promise.all([server.exited, c1.exited, c2.exited])).toEqual([0, 0, 0]);
  expect(server.stdout).toBe(`synced\n${jobs[1]}:rate=10\n${jobs[2]}:rate=20\n`);
});

test('a shell waiter hears abort when the other node reports failed; a wait past CS_SYNC_TIMEOUT returns 4 and aborts nothing; bad input returns 2', async () => {
  const [c] = await submitInline(res, lab.config, JOB, PAIR);
  const timedOut = shell(c!, 0, 'lava_wait nobody-sends; echo "rc=$?"\nlava_send "bad id"; echo "rc=$?"\nlava_wait_all x nobody-has-it; echo "rc=$?"', { CS_SYNC_TIMEOUT: '1' });
  expect(await timedOut.exited).toBe(0);
  expect(timedOut.stdout).toBe('rc=4\nrc=2\nrc=2\n');
  expect(timedOut.stderr).toContain('lava_wait nobody-sends: timed out after 1s');
  expect(timedOut.stderr).toContain('lava_send bad id: query: msg: "bad id" is no message id: only letters, digits, "_", "." and "-"');
  expect(timedOut.stderr).toContain('lava_wait_all x: query: role: no node of this cluster has role nobody-has-it');
  expect((await lab.workers.store.readCluster(c!.cluster)).final).toBeUndefined();

  const waiter = shell(c!, 0, 'lava_wait never-sent; echo "rc=$?"');
  await eventually(async () => (await messageEvents(c!.cluster)).some((e) => e.msg === 'never-sent'), 'the wait to be registered');
  const fail = await fetch(`http://127.0.0.1:${port}/~lkp/cgi-bin/lkp-cluster-sync?job_id=${c!.jobs[1]!.job_id}&state=failed`);
  expect(fail.status).toBe(200);
  expect(await waiter.exited).toBe(0);
  expect(waiter.stdout).toBe('rc=3\n');
  expect(waiter.stderr).toBe(`lava_wait never-sent: cluster aborted: node ${c!.jobs[1]!.job_id} (client) reported failed\n`);
  expect(readFileSync(waiter.cache, { flag: 'a+' }).toString()).toBe('');
});
