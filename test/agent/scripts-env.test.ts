import { chmodSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mappingEnv, programEnv, rolesIpEnv } from '../../src/agent/env';
import { bindDirectIps, devicesByMac } from '../../src/agent/network';
import { findProgram, resolvePrograms, scriptsRoot } from '../../src/agent/scripts';
import { scriptsTree } from './agent-helpers';

const tree = scriptsTree({ 'daemon/srv': '#!/bin/sh\n', 'tests/cli': '#!/bin/sh\n', 'tests/ok.v2+x': '#!/bin/sh\n' });

describe('program lookup', () => {
  test.each(['../etc/passwd', 'a/b', '..', '.hidden', 'x y', 'rm;ls', '$(id)', ''])('refuses the name %j', (name) => {
    expect(() => findProgram(tree, name)).toThrow(/program name .* may hold only letters, digits/);
  });

  test('daemon/NAME is a daemon, tests/NAME a test, anything else a variable; YAML order kept', () => {
    const r = resolvePrograms(tree, [
      { name: 'cli', role: 'client', params: { n: 1 } },
      { name: 'not-here', role: 'client', params: {} },
      { name: 'srv', role: 'server', params: {} },
      { name: 'ok.v2+x', role: 'client', params: {} },
    ]);
    expect(r.daemons.map((p) => [p.name, p.kind, p.path])).toEqual([['srv', 'daemon', path.join(tree, 'daemon/srv')]]);
    expect(r.tests.map((p) => p.name)).toEqual(['cli', 'ok.v2+x']);
    expect(r.variables.map((p) => p.name)).toEqual(['not-here']);
  });

  test('a script that links outside the tree is refused, naming where it leads', () => {
    const t = scriptsTree({});
    symlinkSync('/bin/true', path.join(t, 'tests/evil'));
    expect(() => findProgram(t, 'evil')).toThrow(`tests/evil resolves to ${realpathSync('/bin/true')}, outside the scripts tree ${t}`);
  });

  test('a script that is not executable is refused with the fix', () => {
    const t = scriptsTree({});
    writeFileSync(path.join(t, 'tests/plain'), '#!/bin/sh\n');
    chmodSync(path.join(t, 'tests/plain'), 0o644);
    expect(() => findProgram(t, 'plain')).toThrow('tests/plain in ' + t + ' is not executable (chmod +x it)');
  });

  test('a node with no program in the tree is an error naming the programs and the tree', () => {
    expect(() => resolvePrograms(tree, [{ name: 'iperf', role: 'client', params: {} }])).toThrow(`no program of this node (iperf) is in daemon/ or tests/ of ${tree}`);
  });

  test('--scripts must be an existing directory', () => {
    expect(() => scriptsRoot('/no/such/dir')).toThrow('--scripts: /no/such/dir does not exist');
    expect(() => scriptsRoot(path.join(tree, 'daemon/srv'))).toThrow('is not a directory');
  });
});

describe('program environment (lkp convention)', () => {
  test('parameters become variables of the same name; lists join with a space; mappings flatten one level', () => {
    expect(mappingEnv({ 'fio-setup': 'x', runtime: 300, nr: [1, 2], on: true, empty: null, iperf: { protocol: 'tcp' }, '9lives': 'y' })).toEqual({
      fio_setup: 'x',
      runtime: '300',
      nr: '1 2',
      on: 'true',
      empty: '',
      protocol: 'tcp',
      _9lives: 'y',
    });
  });

  test('roles_ip lines become variables and win over job values; the node facts win over everything', () => {
    const env = programEnv({
      base: { PATH: '/bin' },
      params: { server: 'from-job', port: 1 },
      vars: { port: 2 },
      programParams: { port: 3 },
      rolesIp: rolesIpEnv(['direct_server_ips=192.168.222.1', 'server=10.0.0.1', 'garbage line']),
      node: { job_id: 'cs-1' },
    });
    expect(env).toEqual({ PATH: '/bin', server: '10.0.0.1', port: '3', direct_server_ips: '192.168.222.1', job_id: 'cs-1' });
  });
});

describe('direct network', () => {
  test('a MAC that no device has is an error naming the MAC and the devices there are, and nothing is changed', async () => {
    const before = await devicesByMac();
    await expect(bindDirectIps('02:00:de:ad:be:ef', '192.168.222.1')).rejects.toThrow(/^no network device has MAC 02:00:de:ad:be:ef \(for direct ip 192\.168\.222\.1\); devices here: /);
    expect(await devicesByMac()).toEqual(before);
  });

  test.each([
    ['02:00:00:00:00:01 02:00:00:00:00:02', '192.168.222.1', 'direct_macs has 2 entries but direct_ips has 1'],
    ['02:00:00:00:00:0g', '192.168.222.1', 'direct_macs entry "02:00:00:00:00:0g" is not a MAC address'],
    ['02:00:00:00:00:01', '192.168.222.1;reboot', 'direct_ips entry "192.168.222.1;reboot" is not an IPv4 address'],
  ])('refuses direct_macs %j with direct_ips %j', async (macs, ips, message) => {
    await expect(bindDirectIps(macs, ips)).rejects.toThrow(message);
  });
});
