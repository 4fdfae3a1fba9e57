import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { assertBuilt, CLI, ROOT } from '../helpers/processes';

/**
 * Keeps the README and docs/ true where a machine can tell: the README stays
 * a front door, every relative link and anchor leads somewhere, every command
 * the reference names exists, and the README's two commands are the ones CI
 * and package.json run.
 */

/**
 * Pages the branches of issues 20-23 add (admission, operating clusters, high
 * availability, bounds). Linked from the README and docs/README.md
 * before they exist; the lead empties this list once they are merged.
 */
const COMMAND_1 = 'apt-get update && apt-get install -y redis-server nats-server chromium curl wget iproute2 && npm ci && npm run demo';
const COMMAND_2 = 'npm test';

const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');
const docsPages = (): string[] =>
  readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`);
/** Every markdown file whose links are checked. */
const resultsPages = (): string[] =>
  existsSync(path.join(ROOT, 'docs', 'results'))
    ? readdirSync(path.join(ROOT, 'docs', 'results'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/results/${f}`)
    : [];
const checked = (): string[] => ['README.md', ...docsPages(), ...resultsPages(), 'chaos/JOURNAL.md', 'bench/results/HISTORY.md'].filter((f) => existsSync(path.join(ROOT, f)));

/** Markdown without its fenced code blocks (a `[x](y)` in a shell example is no link). */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(text).matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

interface Link {
  from: string;
  target: string;
  anchor: string | undefined;
}

function relativeLinks(file: string): Link[] {
  const links: Link[] = [];
  for (const m of prose(read(file)).matchAll(/\]\(([^)\s]+)\)/g)) {
    const url = m[1]!;
    if (/^[a-z][a-z+.-]*:/i.test(url)) continue;
    const [rel, anchor] = url.split('#', 2) as [string, string | undefined];
    const target = rel === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), rel));
    links.push({ from: file, target: target.replace(/\/$/, ''), anchor });
  }
  return links;
}

test('the README stays a front door: at most 260 lines', () => {
  const lines = read('README.md').split('\n').length;
  expect(lines).toBeLessThanOrEqual(260);
});

test('every relative link in README.md and docs/ leads to a file that exists', () => {
  const broken = checked()
    .flatMap(relativeLinks)
    .filter((l) => !existsSync(path.join(ROOT, l.target)))
    .map((l) => `${l.from} -> ${l.target}`);
  expect(broken).toEqual([]);
});

test('every #anchor of those links names a heading of its page', () => {
  const broken = checked()
    .flatMap(relativeLinks)
    .filter((l) => l.anchor !== undefined && l.target.endsWith('.md') && existsSync(path.join(ROOT, l.target)))
    .filter((l) => !anchors(read(l.target)).has(l.anchor!))
    .map((l) => `${l.from} -> ${l.target}#${l.anchor}`);
  expect(broken).toEqual([]);
});

/**
 * Paths in code spans that are not this repository's files: a file named as
 * removed, and Compass-CI's own sources.
 */
const NOT_OUR_FILES = ['examples/nats/secure.conf', 'src/scheduler/plugins/cluster.cr'];

test('every file of this repository the docs name in code exists', () => {
  const missing: string[] = [];
  for (const file of checked())
    for (const m of read(file).matchAll(/`((?:src|workers|test|chaos|bench|examples|scripts)\/[A-Za-z0-9_./@-]+)`/g)) {
      const rel = m[1]!.replace(/\/$/, '');
      if (!NOT_OUR_FILES.includes(rel) && !existsSync(path.join(ROOT, rel))) missing.push(`${file}: ${rel}`);
    }
  expect(missing).toEqual([]);
});

test('docs/README.md lists every page of docs/, and the README links the index', () => {
  const listed = new Set(relativeLinks('docs/README.md').map((l) => l.target));
  const missing = docsPages().filter((p) => p !== 'docs/README.md' && !listed.has(p));
  expect(missing).toEqual([]);
  expect(relativeLinks('README.md').map((l) => l.target)).toContain('docs/README.md');
});

test('every `cluster-sync <command>` in code in docs/reference.md is a command of the built CLI', () => {
  assertBuilt();
  const help = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  const commands = new Set([...help.matchAll(/^ {2}([a-z][a-z-]*)(?= )/gm)].map((m) => m[1]!));
  expect(commands).toContain('worker');
  const named = new Set([...read('docs/reference.md').matchAll(/`cluster-sync ([a-z][a-z-]*)/g)].map((m) => m[1]!));
  // "cluster-sync send, wait, wait-all, sync": the heading names four commands at once.
  for (const extra of ['wait', 'wait-all', 'sync']) named.add(extra);
  expect(named.size).toBeGreaterThanOrEqual(14);
  expect([...named].filter((c) => !commands.has(c))).toEqual([]);
  // ...and every command of the CLI is in the reference.
  expect([...commands].filter((c) => c !== 'help' && !named.has(c))).toEqual([]);
});

test("every flag of each command's --help is in docs/reference.md", () => {
  assertBuilt();
  const reference = read('docs/reference.md');
  const missing: string[] = [];
  for (const command of ['split', 'worker', 'services', 'node', 'demo', 'watch', 'status', 'scheduler', 'submit', 'nats-config']) {
    const help = execFileSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8' });
    for (const m of help.matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z-]*)/gm)) if (m[1] !== '--help' && !new RegExp(`\`${m[1]}[ \`]`).test(reference)) missing.push(`${command} ${m[1]}`);
  }
  expect(missing).toEqual([]);
});

test("the README's two commands are the ones .ci/run and package.json run", () => {
  const readme = read('README.md');
  const block = /## The two commands[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const commands = block.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  expect(commands).toEqual([COMMAND_1, COMMAND_2]);

  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
  expect(scripts.demo).toBeDefined();
  expect(scripts.test).toBeDefined();

  const ci = read('.ci/run');
  // CI runs the README's second command as it is written...
  expect(ci).toMatch(/^npm test\b/m);
  // ...installs with the README's first command's installer (a lock file out of step fails)...
  expect(/^(npm (?:ci|install))\b/m.exec(ci)?.[1]).toBe('npm ci');
  // ...and every package it installs when missing is one the README's first command installs.
  const aptReadme = new Set(/apt-get install -y ([a-z0-9 -]+?) &&/.exec(COMMAND_1)![1]!.split(' '));
  // Either form .ci/run may take: one `missing+=(pkg)` per package, or a `PACKAGES=(...)` list.
  const aptCi = [...ci.matchAll(/missing\+=\(([a-z0-9-]+)\)/g), ...ci.matchAll(/^PACKAGES=\(([a-z0-9 -]+)\)/gm)].flatMap((m) => m[1]!.split(' '));
  expect(aptCi.length).toBeGreaterThan(0);
  expect(aptCi.filter((p) => !aptReadme.has(p))).toEqual([]);
});

test('the example systemd units name the command line the reference documents', () => {
  const dir = path.join(ROOT, 'examples', 'systemd');
  const units = readdirSync(dir).filter((f) => f.endsWith('.service'));
  expect(units.sort()).toEqual(['cluster-sync-node@.service', 'cluster-sync-scheduler.service', 'cluster-sync-worker.service']);
  for (const unit of units) {
    const text = readFileSync(path.join(dir, unit), 'utf8');
    const exec = /^ExecStart=\S+ (\S+)/m.exec(text)?.[1];
    expect(['worker', 'scheduler', 'node']).toContain(exec);
    expect(text).toMatch(/^EnvironmentFile=\/etc\/cluster-sync\/cluster-sync\.env$/m);
  }
});

test('docs/layout.md names every folder of src/ and every top-level folder, and no folder that is gone', () => {
  const layout = read('docs/layout.md');
  const named = new Set([...layout.matchAll(/^\| `([^`]+)\/` \|/gm)].map((m) => m[1] as string));
  const dirs = (rel: string): string[] =>
    readdirSync(path.join(ROOT, rel), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => (rel === '.' ? d.name : `${rel}/${d.name}`));
  // Every top-level folder but what the build, npm and git make (and .git's siblings that are not the project's).
  const made = new Set(['node_modules', 'dist', 'coverage', 'test-output', '.git', '.cs-local', 'nats-lab']);
  const expected = [...dirs('.').filter((d) => !made.has(d) && (!d.startsWith('.') || d === '.ci')), ...dirs('src')];
  expect(expected.filter((d) => !named.has(d))).toEqual([]);
  expect([...named].filter((d) => !existsSync(path.join(ROOT, d)))).toEqual([]);
});
