import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { prepareClusters } from '../../src/cluster/prepare';
import type { PrepareOptions } from '../../src/cluster/prepare';
import { ClusterStore } from '../../src/cluster/store';
import { submitClusters } from '../../src/cluster/submit';
import { InvalidInputError } from '../../src/core/errors';
import { QueueSet } from '../../src/queue/queues';
import { note } from '../faults/summary';
import { diffSnapshots, snapshotKeys } from '../helpers/snapshot';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * Hostile jobs and cluster specs, submitted the way the scheduler submits
 * them (prepareClusters, then submitClusters into a real Redis): each fails
 * with an InvalidInputError naming the file and the field, and leaves every
 * key under the prefix as it was. Nothing pollutes Object.prototype.
 *
 * No test here asserts how long a refusal takes: on a busy 2-core machine any
 * bound is a timing margin. "No pathological blow-up" is held by the limits
 * themselves, which refuse before the work is done: the alias-bomb limit
 * counts nodes while the YAML is resolved (src/core/safe-yaml.ts), the
 * 10,000-jobs limit counts expansions as they are made (src/job/expand.ts),
 * the node-jobs limit is checked after each job's split, so at most
 * 10,000 / hosts + 1 jobs are split (src/cluster/prepare.ts), and the 254-host
 * limit is a schema refine before any split. A blow-up would show as jest's
 * test timeout; speed is measured by `npm run bench`.
 */
const lab = useTestServers();
const { res } = lab;
let redis: Redis;
let store: ClusterStore;
let queues: QueueSet;
let prefix: string;
let specDir: string;

beforeAll(async () => {
  prefix = lab.config.keyPrefix;
  redis = res.redis(lab.config);
  store = new ClusterStore(redis, { keyPrefix: prefix });
  queues = res.add(new QueueSet(redis, store.keys), (q) => q.close());
  specDir = mkdtempSync(path.join(os.tmpdir(), 'cs-hostile-specs-'));
  // One good submit first, so "nothing changed" compares against a Redis that holds something.
  await submitClusters(store, queues, prepareClusters(JOB('two'), 'good.yaml', { inlineSpec: SPEC(2) }));
});
afterAll(() => {
  rmSync(specDir, { recursive: true, force: true });
});

/** A job of a server and client role on spec `cluster`. */
function JOB(cluster: string, extra = ''): string {
  return `suite: t\ncluster: ${cluster}\n${extra}\nif role server:\n  srv:\nif role client:\n  cli:\n`;
}
function SPEC(n: number, macs = ''): string {
  return `nodes:\n${Array.from({ length: n }, (_, i) => `  h--${i + 1}: { roles: [${i === 0 ? 'server' : 'client'}]${macs} }`).join('\n')}\n`;
}
function specFile(name: string, text: string): string {
  writeFileSync(path.join(specDir, name), text);
  return name;
}
/** `levels` levels of ten aliases each: 10^levels nodes once expanded, a few hundred bytes as text. */
function aliasBomb(levels: number, indent = ''): string {
  const lines = [`${indent}l0: &l0 [x, x, x, x, x, x, x, x, x, x]`];
  for (let i = 1; i <= levels; i++)
    lines.push(
      `${indent}l${i}: &l${i} [${Array(10)
        .fill(`*l${i - 1}`)
        .join(', ')}]`,
    );
  return lines.join('\n');
}

async function submit(text: string, opts: PrepareOptions): Promise<void> {
  await submitClusters(store, queues, prepareClusters(text, 'job.yaml', opts));
}

/** Submits and expects an InvalidInputError whose message matches, with no key changed. The time is noted, not asserted. */
async function expectRefused(input: string, text: string, opts: PrepareOptions, message: RegExp): Promise<void> {
  const before = await snapshotKeys(redis, prefix);
  const t0 = performance.now();
  const err = await submit(text, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  const ms = performance.now() - t0;
  expect(err).toBeInstanceOf(InvalidInputError);
  expect((err as Error).message).toMatch(message);
  const changed = diffSnapshots(before, await snapshotKeys(redis, prefix));
  expect(changed).toEqual([]);
  expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  const msg = (err as Error).message;
  note(input, `refused in ${Math.round(ms)} ms: "${msg.length > 120 ? `${msg.slice(0, 60)}...${msg.slice(-60)}` : msg}"; ${Object.keys(before).length} keys, 0 changed`);
}

const inline = (n = 2): PrepareOptions => ({ inlineSpec: SPEC(n) });

describe('jobs', () => {
  test('a YAML alias bomb (10^9 nodes in 300 bytes)', async () => {
    await expectRefused('job: YAML alias bomb', `${JOB('x')}${aliasBomb(9)}\n`, inline(), /^job\.yaml: document expands to more than 100000 nodes \(an alias bomb\?\)$/);
  });
  test('a 10 MiB job', async () => {
    const text = `${JOB('x')}pad: "${'x'.repeat(10 * 1024 * 1024)}"\n`;
    await expectRefused('job: 10 MiB', text, inline(), new RegExp(`^job\\.yaml: is ${Buffer.byteLength(text)} bytes; the limit is 1048576$`));
  });
  test.each([
    ['top level', '__proto__: { polluted: yes }', /^job\.yaml: __proto__: key "__proto__" is not allowed$/],
    ['program parameters', '', /^job\.yaml: if role server\.srv\.__proto__: key "__proto__" is not allowed$/],
    ['a YAML merge key (<<)', 'base: &b\n  __proto__: { polluted: yes }\nmerged:\n  <<: *b', /key "__proto__" is not allowed/],
  ])('a "__proto__" key at %s', async (where, extra, message) => {
    const text = where === 'program parameters' ? 'suite: t\ncluster: x\nif role server:\n  srv:\n    __proto__: { polluted: yes }\nif role client:\n  cli:\n' : JOB('x', extra);
    await expectRefused(`job: "__proto__" key (${where})`, text, inline(), message);
  });
  test('a "__proto__" key in a JSON job', async () => {
    await expectRefused(
      'job: "__proto__" key (JSON)',
      '{"suite": "t", "cluster": "x", "__proto__": {"polluted": "yes"}, "if role server": {"srv": null}}',
      inline(),
      /^job\.yaml: __proto__: key "__proto__" is not allowed$/,
    );
  });
  test('"constructor", "hasOwnProperty", "toString" keys are plain data, also through multi-document merges', async () => {
    const text = `${JOB('x', 'constructor: x\nhasOwnProperty: 1\ntoString: y')}---\nconstructor: { b: 2 }\n`;
    const prepared = prepareClusters(text.replace('if role server:\n  srv:', 'if role server:\n  srv:\n  constructor: { a: 1 }\n  valueOf: 3'), 'job.yaml', inline());
    // The last job is the second document put over the first.
    const p = prepared[prepared.length - 1];
    expect(p!.job).toMatchObject({ constructor: { b: 2 }, hasOwnProperty: 1, toString: 'y' });
    const server = p!.nodes[0]!;
    expect(server.programs.map((x) => x.name)).toEqual(['srv', 'constructor']);
    expect(server.vars).toEqual({ valueOf: 3 });
    expect(Object.getPrototypeOf(p!.job)).toBe(Object.prototype);
    expect(({} as { constructor: unknown }).constructor).toBe(Object);
    expect((Object.prototype as Record<string, unknown>).b).toBeUndefined();
    note('job: "constructor" / "hasOwnProperty" / "toString" keys', 'accepted as data (constructor: {b: 2} merged from document 2); Object.prototype untouched');
  });
  test.each([
    ['with "/"', 'bin/sh'],
    ['"../../../bin/sh"', '../../../bin/sh'],
    ['".."', '..'],
    ['"a..b"', 'a..b'],
    ['with ";"', 'srv;reboot'],
    ['"$(reboot)"', '$(reboot)'],
    ['with backticks', '`id`'],
    ['with a space', 'srv x'],
    ['starting with "-"', '-rf'],
  ])('a program name %s', async (what, name) => {
    const text = `suite: t\ncluster: x\nif role server:\n  ${JSON.stringify(name)}:\nif role client:\n  cli:\n`;
    await expectRefused(
      `job: program name ${what}`,
      text,
      inline(),
      new RegExp(`^job\\.yaml: if role server\\.${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: program name .* may hold only letters, digits`),
    );
  });
  test('a NUL byte in a program name', async () => {
    await expectRefused('job: NUL byte in a program name', String.raw`{"suite": "t", "cluster": "x", "if role server": {"srv\u0000x": null}}`, inline(), /keys may not contain NUL bytes/);
  });
  test('a raw NUL byte anywhere in the text', async () => {
    await expectRefused('job: raw NUL byte in the text', `${JOB('x')}note: a\0b\n`, inline(), /not valid YAML: null byte is not allowed/);
  });
  test('a NUL byte in a variable value', async () => {
    await expectRefused(
      'job: NUL byte in a variable value',
      String.raw`{"suite": "t", "cluster": "x", "if role server": {"FOO": "a\u0000b", "BAR": "ok", "srv": null}}`,
      inline(),
      /if role server\.FOO: values may not contain NUL bytes/,
    );
  });
  test('a role name with shell characters', async () => {
    await expectRefused('job: role name "$(reboot)"', 'suite: t\ncluster: x\nif role $(reboot):\n  srv:\n', inline(), /role name "\$\(reboot\)" may hold only/);
  });
  test.each([['../../etc/passwd'], ['/etc/passwd'], ['..']])('a cluster spec name %s', async (name) => {
    await expectRefused(`job: cluster spec name "${name}"`, JOB(JSON.stringify(name)), { clusterDir: specDir }, /cluster: cluster spec name .* must be a plain file name/);
  });
  test('a list that expands to 10,001 jobs', async () => {
    await expectRefused('job: expands to 10,001 jobs', JOB('x', `n: [${Array.from({ length: 10_001 }, (_, i) => i).join(', ')}]`), inline(), /expands to more than 10000 jobs/);
  });
  test('10,000 expansions on a 254-host spec (2.5 million node jobs)', async () => {
    const text = JOB('x', `n: [${Array.from({ length: 10_000 }, (_, i) => i).join(', ')}]`);
    await expectRefused('job: 10,000 expansions x 254 hosts', text, inline(254), /splits into more than 10000 node jobs \(10000 jobs on cluster spec x of 254 hosts\)$/);
  });
  test('nesting 80 levels deep', async () => {
    await expectRefused('job: nested 80 levels', JOB('x', `deep: ${'['.repeat(80)}${']'.repeat(80)}`), inline(), /nested deeper than 64 levels/);
  });
  test('nesting 10,000 levels deep', async () => {
    await expectRefused('job: nested 10,000 levels', JOB('x', `deep: ${'['.repeat(10_000)}${']'.repeat(10_000)}`), inline(), /not valid YAML: nesting exceeded maxDepth/);
  });
  test('a JavaScript function tag', async () => {
    await expectRefused('job: !!js/function tag', JOB('x', 'f: !!js/function "function () { return 1 }"'), inline(), /not valid YAML: unknown tag/);
  });
  test('an infinite number', async () => {
    await expectRefused('job: .inf number', JOB('x', 'runtime: .inf'), inline(), /runtime: numbers must be finite/);
  });
});

describe('cluster specs', () => {
  test('a YAML alias bomb in a spec file', async () => {
    await expectRefused(
      'spec: YAML alias bomb',
      JOB(specFile('bomb', `${aliasBomb(9)}\nnodes:\n  h--1: { roles: [server] }\n`)),
      { clusterDir: specDir },
      /bomb: document expands to more than 100000 nodes/,
    );
  });
  test('a spec with 10,000 hosts', async () => {
    await expectRefused('spec: 10,000 hosts', JOB(specFile('huge', SPEC(10_000))), { clusterDir: specDir }, /huge: nodes: a cluster has at most 254 hosts$/);
  });
  test('a "__proto__" host', async () => {
    await expectRefused('spec: "__proto__" host', JOB(specFile('proto', 'nodes:\n  __proto__: { roles: [server] }\n')), { clusterDir: specDir }, /nodes\.__proto__: key "__proto__" is not allowed/);
  });
  test.each([
    ['five octets', 'ec:f4:bb:cb:7b'],
    ['non-hex digits', 'zz:f4:bb:cb:7b:92'],
    ['a shell command after it', 'ec:f4:bb:cb:7b:92; reboot'],
  ])('an invalid MAC (%s)', async (what, mac) => {
    await expectRefused(`spec: invalid MAC (${what})`, JOB('x'), { inlineSpec: SPEC(2, `, macs: [${JSON.stringify(mac)}]`) }, /nodes\.h--1\.macs\.0: a MAC address looks like ec:f4:bb:cb:7b:92$/);
  });
  test('ip0 overflow: direct addresses past .254', async () => {
    const spec = 'ip0: 253\nnodes:\n  h--1: { roles: [server], macs: ["ec:f4:bb:cb:7b:01"] }\n  h--2: { roles: [client], macs: ["ec:f4:bb:cb:7b:02", "ec:f4:bb:cb:7b:03"] }\n';
    await expectRefused('spec: ip0 overflow (253 + 3 macs)', JOB('x'), { inlineSpec: spec }, /ip0: host h--2 would get direct address 192\.168\.222\.255: host ids stop at 254/);
  });
  test.each([['255'], ['0'], ['"1; reboot"']])('ip0: %s', async (v) => {
    await expectRefused(`spec: ip0 ${v}`, JOB('x'), { inlineSpec: `ip0: ${v}\n${SPEC(2)}` }, /: ip0: /);
  });
  test.each([['h;reboot'], ['a/b'], ['a b'], ['..hidden']])('a host name %s', async (name) => {
    await expectRefused(
      `spec: host name "${name}"`,
      JOB('x'),
      { inlineSpec: `nodes:\n  ${JSON.stringify(name)}: { roles: [server] }\n  h--2: { roles: [client] }\n` },
      /: nodes\..*: a host name is letters, digits, "\.", "_" or "-" \(at most 253\)$/,
    );
  });
});
