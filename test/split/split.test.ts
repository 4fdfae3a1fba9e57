import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prepareClusters } from '../../src/cluster/prepare';
import { InvalidInputError } from '../../src/core/errors';
import { loadClusterSpec } from '../../src/spec/cluster-spec';
import { testboxOf } from '../../src/split/split';
import { CLUSTER_DIR, fixtureJob } from '../helpers/fixtures';

/** A job of two roles pointed at a given spec. */
const job = (spec: string, extra = '') => `suite: t\ncluster: ${spec}\n${extra}if role server:\n  srv:\nif role client:\n  cli:\n    n: 1\n  foo: bar\n`;

function specDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-spec-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

function errorOf(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidInputError) return err;
    throw err;
  }
  throw new Error('expected an InvalidInputError');
}

describe('the fixture cluster specs', () => {
  test('cs-vm-2p16g (current form): one job per host, queue without --N, no direct network', () => {
    const [c] = prepareClusters(job('cs-vm-2p16g'), 'job', { clusterDir: CLUSTER_DIR });
    expect(c!.nodes.map((n) => [n.host, n.testbox, n.queue, n.node_roles, n.direct_macs, n.direct_ips, n.nr_nic])).toEqual([
      ['vm-2p16g-multi-node--1', 'vm-2p16g-multi-node', 'vm-2p16g-multi-node', 'server', '', '', 2],
      ['vm-2p16g-multi-node--2', 'vm-2p16g-multi-node', 'vm-2p16g-multi-node', 'client', '', '', 2],
    ]);
    expect(c!.nodes[0]!.programs.map((p) => p.name)).toEqual(['srv']);
    expect(c!.nodes[1]!.programs).toEqual([{ name: 'cli', role: 'client', params: { n: 1 } }]);
    expect(c!.nodes[1]!.vars).toEqual({ foo: 'bar' });
    expect(c!.nodes[0]!.vars).toEqual({});
  });

  test('cs-lkp-hsw-ep5 (legacy form): macs give direct ips from 192.168.222.1 across hosts', () => {
    const [c] = prepareClusters(job('cs-lkp-hsw-ep5'), 'job', { clusterDir: CLUSTER_DIR });
    expect(c!.nodes.map((n) => [n.host, n.queue, n.node_roles, n.direct_macs, n.direct_ips])).toEqual([
      ['lkp-hsw-ep5', 'lkp-hsw-ep5', 'server', 'ec:f4:bb:cb:7b:92', '192.168.222.1'],
      ['lkp-hsw-ep2', 'lkp-hsw-ep2', 'client', 'ec:f4:bb:cb:54:92', '192.168.222.2'],
    ]);
  });

  test('cs-localhost: one machine runs every role', () => {
    const clusters = prepareClusters(fixtureJob('iperf.yaml'), 'iperf.yaml', { clusterDir: CLUSTER_DIR });
    expect(clusters).toHaveLength(2); // protocol: [tcp, udp]
    for (const c of clusters) {
      expect(c.nodes).toHaveLength(1);
      expect(c.nodes[0]!.standalone).toBe(true);
      expect(c.nodes[0]!.node_roles).toBe('server client');
      expect(c.nodes[0]!.programs.map((p) => p.name)).toEqual(['iperf-server', 'iperf']);
    }
    expect(clusters.map((c) => c.nodes[0]!.programs[1]!.params)).toEqual([{ protocol: 'tcp' }, { protocol: 'udp' }]);
  });

  test('redis.yaml on cs-localhost keeps its top-level parameters', () => {
    const [c] = prepareClusters(fixtureJob('redis.yaml'), 'redis.yaml', { clusterDir: CLUSTER_DIR });
    expect(c!.nodes[0]!.params).toMatchObject({ suite: 'redis', nr_processes: 4, sysctl: { sc_somaxconn: 65535 } });
    expect(c!.nodes[0]!.programs.map((p) => p.name)).toEqual(['redis-server', 'redis']);
  });

  test('a job with no cluster runs on one local machine', () => {
    const [c] = prepareClusters('suite: t\nif role server:\n  srv:\n', 'job');
    expect(c!.nodes).toHaveLength(1);
    expect(c!.nodes[0]!.standalone).toBe(true);
  });

  test.each(Object.entries({ 'vm-2p16g-multi-node--12': 'vm-2p16g-multi-node', 'lkp-hsw-ep5': 'lkp-hsw-ep5', 'a--b--3': 'a--b', 'x--': 'x--' }))('testbox of %s is %s', (host, box) =>
    expect(testboxOf(host)).toBe(box),
  );
});

describe('edges of splitting', () => {
  test('a host with several macs gets one address each; counting goes on across hosts from ip0', () => {
    const dir = specDir({
      multi: 'ip0: 10\nnodes:\n  a--1: { roles: [server], macs: ["00:00:00:00:00:01", "00:00:00:00:00:02"] }\n  b--2: { roles: [client] }\n  c--3: { roles: [client], macs: ["00:00:00:00:00:03"] }\n',
    });
    const [c] = prepareClusters(job('multi'), 'job', { clusterDir: dir });
    expect(c!.nodes.map((n) => [n.direct_macs, n.direct_ips])).toEqual([
      ['00:00:00:00:00:01 00:00:00:00:00:02', '192.168.222.10 192.168.222.11'],
      ['', ''],
      ['00:00:00:00:00:03', '192.168.222.12'],
    ]);
  });

  test('host ids past 254 are an error naming the host', () => {
    const dir = specDir({ over: 'ip0: 254\nnodes:\n  a: { roles: [server], macs: ["00:00:00:00:00:01"] }\n  b: { roles: [client], macs: ["00:00:00:00:00:02"] }\n' });
    const err = errorOf(() => prepareClusters(job('over'), 'job', { clusterDir: dir }));
    expect(err.message).toContain('host b');
    expect(err.message).toContain('192.168.222.255');
  });

  test('hosts that match no role of the job get no job', () => {
    const dir = specDir({ extra: 'nodes:\n  s: { roles: [server] }\n  m: { roles: [monitor] }\n  c: { roles: [client] }\n' });
    const [c] = prepareClusters(job('extra'), 'job', { clusterDir: dir });
    expect(c!.nodes.map((n) => n.host)).toEqual(['s', 'c']);
  });

  test("node_roles are all of the host's roles, joined by a space", () => {
    const dir = specDir({ both: 'nodes:\n  s: { roles: [server, monitor] }\n  c: { roles: [client] }\n' });
    const [c] = prepareClusters(job('both'), 'job', { clusterDir: dir });
    expect(c!.nodes[0]!.node_roles).toBe('server monitor');
  });

  test('a role of the job that no host has is ignored with a warning naming it (Compass-CI splits by the roles hosts have)', () => {
    const dir = specDir({ only: 'nodes:\n  s: { roles: [server] }\n' });
    const [c] = prepareClusters(job('only'), 'job', { clusterDir: dir });
    expect(c!.nodes.map((n) => [n.host, n.node_roles])).toEqual([['s', 'server']]);
    expect(c!.warnings).toEqual(['job: role client of the job is on no host of cluster spec only: ignored']);
  });

  test('no role of the job on any host is a clear error', () => {
    const dir = specDir({ none: 'nodes:\n  m: { roles: [monitor] }\n' });
    const err = errorOf(() => prepareClusters(job('none'), 'job', { clusterDir: dir }));
    expect(err.message).toMatch(/no role of the job \(server, client\) is on a host of cluster spec none \(hosts have: monitor\)/);
    expect(err.field).toBe('if role server');
  });

  test('keys of a host or of the spec that cluster-sync does not use are ignored, and named in a warning', () => {
    const dir = specDir({ lab: 'switch: Switch-P12\nlab: z9\nnodes:\n  s: { roles: [server], bmc_ip: 10.1.1.1, cpus: 4 }\n  c: { roles: [client], macs: ["EC:F4:BB:CB:54:92"] }\n' });
    const [c] = prepareClusters(job('lab'), 'job', { clusterDir: dir });
    expect(c!.nodes.map((n) => [n.host, n.node_roles, n.direct_macs, n.direct_ips])).toEqual([
      ['s', 'server', '', ''],
      ['c', 'client', 'ec:f4:bb:cb:54:92', '192.168.222.1'],
    ]);
    expect(c!.warnings).toEqual([`${path.join(dir, 'lab')}: ignored key lab (not used by cluster-sync)`, `${path.join(dir, 'lab')}: host s: ignored keys bmc_ip, cpus (not used by cluster-sync)`]);
  });

  test("a job's own cluster_spec mapping is used instead of the file named by cluster: (Compass-CI reads it first)", () => {
    const dir = specDir({ own: 'nodes:\n  file--1: { roles: [server] }\n  file--2: { roles: [client] }\n' });
    const text = `${job('own')}cluster_spec:\n  ip0: 7\n  nodes:\n    inline--1: { roles: [server], macs: ["ec:f4:bb:cb:7b:92"] }\n    inline--2: { roles: [client] }\n`;
    for (const opts of [{ clusterDir: dir }, {}]) {
      const [c] = prepareClusters(text, 'job', opts);
      expect(c!.spec.name).toBe('own');
      expect(c!.nodes.map((n) => [n.host, n.direct_ips])).toEqual([
        ['inline--1', '192.168.222.7'],
        ['inline--2', ''],
      ]);
      // the spec is not passed on to the node as a parameter
      expect(c!.nodes[0]!.params.cluster_spec).toBeUndefined();
    }
    const bad = errorOf(() => prepareClusters(`${job('own')}cluster_spec: other-file\n`, 'job', { clusterDir: dir }));
    expect(bad.field).toBe('cluster_spec');
    const badHost = errorOf(() => prepareClusters(`${job('own')}cluster_spec:\n  nodes:\n    a: { roles: [] }\n`, 'job', { clusterDir: dir }));
    expect(badHost.message).toMatch(/^job: cluster_spec: nodes\.a\.roles: a host needs at least one role/);
  });

  test('a job with cluster_spec: but no cluster: is refused naming the rule, not run on one machine (issue 23)', () => {
    const text = 'suite: t\ncluster_spec:\n  nodes:\n    inline--1: { roles: [server] }\n    inline--2: { roles: [client] }\nif role server:\n  srv:\nif role client:\n  cli:\n';
    const err = errorOf(() => prepareClusters(text, 'job', { clusterDir: CLUSTER_DIR }));
    expect(err.field).toBe('cluster_spec');
    expect(err.message).toMatch(/^job: cluster_spec: is used only together with cluster: NAME \(Compass-CI splits a job only when cluster: names a spec other than cs-localhost/);
    // With cluster: it splits by the job's own spec, as Compass-CI does.
    const [c] = prepareClusters(`cluster: lab\n${text}`, 'job', {});
    expect(c!.nodes.map((n) => n.host)).toEqual(['inline--1', 'inline--2']);
  });

  test('an unknown spec name says where it looked', () => {
    expect(() => prepareClusters(job('nope'), 'job', { clusterDir: CLUSTER_DIR })).toThrow(`cluster spec "nope" not found in ${CLUSTER_DIR}`);
  });

  test.each([
    ['../etc/passwd', /must be a plain file name/],
    ['a/b', /must be a plain file name/],
  ])('a spec name like %s is refused before any file is read', (name, re) => {
    expect(() => prepareClusters(job(name), 'job', { clusterDir: CLUSTER_DIR })).toThrow(re);
  });

  test.each([
    ['nodes:\n  a: { roles: [server], macs: ["zz:00:00:00:00:01"] }\n', /nodes\.a\.macs\.0: a MAC address looks like/],
    ['nodes:\n  a: { roles: [] }\n', /nodes\.a\.roles: a host needs at least one role/],
    ['ip0: 0\nnodes:\n  a: { roles: [server] }\n', /ip0/],
    ['- a\n- b\n', /a cluster spec must be a YAML mapping/],
  ])('a bad spec is refused naming the field: %#', (text, re) => {
    const dir = specDir({ bad: text });
    expect(() => loadClusterSpec('bad', dir)).toThrow(re);
  });

  test("cluster_timeout sets every barrier's deadline; a bad one names the field", () => {
    const [c] = prepareClusters(job('cs-vm-2p16g', 'cluster_timeout: 10m\n'), 'job', { clusterDir: CLUSTER_DIR });
    expect(c!.nodes[0]!.cluster_timeout_ms).toBe(600_000);
    expect(() => prepareClusters(job('cs-vm-2p16g', 'cluster_timeout: soon\n'), 'job', { clusterDir: CLUSTER_DIR })).toThrow(/cluster_timeout: expected a positive duration/);
  });

  test('a role block that is not a mapping is refused', () => {
    expect(() => prepareClusters('cluster: cs-vm-2p16g\nif role server: 3\n', 'job', { clusterDir: CLUSTER_DIR })).toThrow(/if role server: a role block must be a mapping/);
  });
});
