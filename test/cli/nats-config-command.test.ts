import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, ROOT, assertBuilt } from '../helpers/processes';

function run(args: string[]) {
  assertBuilt();
  return spawnSync(process.execPath, [CLI, 'nats-config', ...args], { encoding: 'utf8', timeout: 20_000 });
}

const nkeysOf = (conf: string): string[] => [...conf.matchAll(/nkey: "(U[A-Z0-9]+)"/g)].map((m) => m[1]!);

test('nats-config writes one user per testbox plus worker, scheduler and ops, each with its seed and settings', () => {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'cs-natscfg-')), 'lab');
  const r = run(['--testboxes', path.join(ROOT, 'examples/nats/testboxes.txt'), '--out', out, '--subject-prefix', 'lab1']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const conf = readFileSync(path.join(out, 'auth.conf'), 'utf8');
  expect(nkeysOf(conf)).toHaveLength(5);
  expect(conf).toContain('"lab1.queue.demo-client.take", "lab1.queue.demo-client.done"');
  expect(conf).toContain('"_INBOX_node-demo-client.>"');
  expect(conf).toMatch(/^ {2}timeout: 10$/m); // seconds to authenticate: the 2 s default drops busy nkey clients
  for (const user of ['worker', 'scheduler', 'ops', 'node-demo-server', 'node-demo-client']) {
    expect(statSync(path.join(out, `${user}.nk`)).mode & 0o777).toBe(0o600);
    const seed = readFileSync(path.join(out, `${user}.nk`), 'utf8');
    expect(seed).toMatch(/^SU[A-Z0-9]+\n$/);
    expect(conf).not.toContain(seed.trim()); // the server's file holds no secret
    expect(readFileSync(path.join(out, `${user}.env`), 'utf8')).toBe(`CS_NATS_CREDS=${path.join(out, `${user}.nk`)}\nCS_NATS_INBOX_PREFIX=_INBOX_${user}\nCS_SUBJECT_PREFIX=lab1\n`);
  }
  expect(r.stdout).toContain(`set -a; . ${path.join(out, 'node-demo-client.env')}; set +a; cluster-sync node --testbox demo-client`);

  // Run again with one more testbox: the existing keys stay, one is added.
  const again = run(['--testboxes', 'demo-server,demo-client,third', '--out', out, '--subject-prefix', 'lab1']);
  expect(again.status).toBe(0);
  const keys = nkeysOf(readFileSync(path.join(out, 'auth.conf'), 'utf8'));
  expect(keys.slice(0, 5)).toEqual(nkeysOf(conf));
  expect(keys).toHaveLength(6);
});

test.each([
  [['--testboxes', 'ok,bad.name', '--out', 'x'], /--testboxes: .*"bad\.name" is no subject token: no "\."/],
  [['--testboxes', ' , ', '--out', 'x'], /--testboxes: names no testbox/],
  [['--testboxes', 'a', '--out', 'x', '--subject-prefix', 'a b'], /--subject-prefix: dot-separated tokens/],
])('nats-config %j is refused with a clear message, exit 2', (args, message) => {
  const r = run(args);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(message);
});

test('a seed file that is not an nkey seed is named, not overwritten', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'cs-natscfg-'));
  writeFileSync(path.join(out, 'worker.nk'), 'not a seed\n');
  const r = run(['--testboxes', 'a', '--out', out]);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/worker\.nk: is not an nkey user seed/);
  expect(readFileSync(path.join(out, 'worker.nk'), 'utf8')).toBe('not a seed\n');
});
