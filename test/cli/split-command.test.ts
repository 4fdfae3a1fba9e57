import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, assertBuilt } from '../helpers/processes';
import { CLUSTER_DIR, JOBS_DIR } from '../helpers/fixtures';

function run(args: string[]) {
  assertBuilt();
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
}

test('split --json prints the node jobs a submit would create', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-split-'));
  const job = path.join(dir, 'ep5.yaml');
  writeFileSync(job, 'suite: iperf\ncluster: cs-lkp-hsw-ep5\nif role server:\n  iperf-server:\nif role client:\n  iperf:\n    protocol: tcp\n');
  const r = run(['split', job, '--cluster-dir', CLUSTER_DIR, '--json']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const jobs = JSON.parse(r.stdout) as Record<string, unknown>[];
  expect(jobs.map((j) => [j.job_id, j.cluster, j.testbox, j.queue, j.node_roles, j.direct_macs, j.direct_ips, j.nr_nic])).toEqual([
    ['<job-1>', '<job-1>', 'lkp-hsw-ep5', 'lkp-hsw-ep5', 'server', 'ec:f4:bb:cb:7b:92', '192.168.222.1', 2],
    ['<job-2>', '<job-1>', 'lkp-hsw-ep2', 'lkp-hsw-ep2', 'client', 'ec:f4:bb:cb:54:92', '192.168.222.2', 2],
  ]);
  expect(jobs[1]!.programs).toEqual([{ name: 'iperf', role: 'client', params: { protocol: 'tcp' } }]);
});

test('split of a fixture job prints one line per node job', () => {
  const r = run(['split', path.join(JOBS_DIR, 'redis.yaml'), '--cluster-dir', CLUSTER_DIR]);
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('cluster spec cs-localhost, 1 node job');
  expect(r.stdout).toContain('programs=redis-server, redis');
});

test('a bad job exits 2 with one line that names the file and the field', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-split-'));
  const job = path.join(dir, 'bad.yaml');
  writeFileSync(job, 'cluster: cs-vm-2p16g\nif role tester:\n  t:\n');
  const r = run(['split', job, '--cluster-dir', CLUSTER_DIR]);
  expect(r.status).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toContain(`${job}: if role tester: no role of the job (tester) is on a host of cluster spec cs-vm-2p16g`);
});

test('a job role no host has, and spec keys cluster-sync does not use, are split around with a warning naming them', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-split-'));
  const job = path.join(dir, 'lab.yaml');
  writeFileSync(job, 'cluster: cs-lab\nif role server:\n  srv:\nif role tester:\n  t:\ncluster_spec:\n  nodes:\n    lab--1: { roles: [server], bmc_ip: 10.0.0.9 }\n');
  const r = run(['split', job]);
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('job 1 of 1: cluster spec cs-lab, 1 node job\n  lab--1  queue=lab  roles="server"  programs=srv\n');
  expect(r.stderr).toBe(
    `warning: ${job}: cluster_spec: host lab--1: ignored key bmc_ip (not used by cluster-sync)\nwarning: ${job}: role tester of the job is on no host of cluster spec cs-lab: ignored\n`,
  );
});

test('a missing job file is a clear error', () => {
  const r = run(['split', '/nonexistent/job.yaml']);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/^cluster-sync: \/nonexistent\/job\.yaml: cannot read: ENOENT/);
});
