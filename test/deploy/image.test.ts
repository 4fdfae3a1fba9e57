import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { contextFiles, dockerignore, modelImage } from '../helpers/dockerfile';
import { ROOT } from '../helpers/processes';

/**
 * There is no Docker engine here, so the image is never built in a test.
 * What can be checked without one: the files the final image holds, derived
 * from the Dockerfile's own steps (test/helpers/dockerfile.ts), include
 * everything `cluster-sync demo` reads and everything the command line
 * loads; the build stage holds every module the compiled code imports; and
 * no secret or local state goes into the build context.
 */
const stages = modelImage(ROOT);
const final = stages.at(-1)!;
const build = stages.find((s) => s.name === 'build')!;
const inApp = (rel: string): string => path.posix.join(final.workdir, rel);

/** The repository's own files under `rel` (a file or a folder), relative to the root. */
function repoFiles(rel: string): string[] {
  return contextFiles(ROOT).filter((f) => f === rel || f.startsWith(`${rel}/`));
}

test('two stages: the build installs with npm ci, the image runs the command line as an unprivileged user', () => {
  expect(stages.map((s) => s.base)).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim']);
  expect(build.runs.some((r) => /^npm ci\b/.test(r))).toBe(true);
  expect(build.runs.join('\n')).not.toMatch(/npm install/);
  expect(final.entrypoint).toEqual(['node', 'dist/src/cli/main.js']);
  expect(final.files).toContain(inApp('dist/src/cli/main.js'));
  expect(final.files).toContain(inApp('node_modules/.package-lock.json'));
  expect(final.files).toContain(inApp('bin/cluster-sync'));
  expect(final.user).toBe('node');
});

test('the image holds every file `cluster-sync demo` reads, and the servers it starts', () => {
  const demo = readFileSync(path.join(ROOT, 'src/cli/demo-command.ts'), 'utf8');
  const reads = [...demo.matchAll(/path\.join\(root, '([^']+)'\)/g)].map((m) => m[1]!);
  expect(reads).toEqual(expect.arrayContaining(['dist/src/cli/main.js', 'examples/jobs/echo.yaml', 'examples/cluster', 'examples/lkp']));
  for (const rel of reads) {
    if (rel.startsWith('dist/')) expect(final.files).toContain(inApp(rel));
    else {
      const files = repoFiles(rel);
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect(final.files).toContain(inApp(f));
    }
  }
  // The demo finds the project by its package.json (projectRoot), and starts redis-server and nats-server when no servers are configured.
  expect(final.files).toContain(inApp('package.json'));
  expect(final.packages).toEqual(expect.arrayContaining(['redis-server', 'nats-server']));
});

test('the image holds the compiled module of every source file of src/ and workers/, and the Lua and UI files beside them', () => {
  for (const dir of ['src', 'workers']) {
    for (const f of repoFiles(dir)) {
      if (f.endsWith('.ts')) expect(final.files).toContain(inApp(`dist/${f.replace(/\.ts$/, '.js')}`));
      else if (/\.(lua|html|js|css)$/.test(f)) expect(final.files).toContain(inApp(`dist/${f}`));
    }
  }
});

test('the build stage holds every file the code of src/ and workers/ imports by a relative path', () => {
  const sources = [...build.files].filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  expect(sources.length).toBeGreaterThan(50);
  for (const file of sources) {
    const text = readFileSync(path.join(ROOT, path.posix.relative(build.workdir, file)), 'utf8');
    for (const m of text.matchAll(/(?:from|import\() ?'(\.{1,2}\/[^']+)'/g)) {
      const target = path.posix.resolve(path.posix.dirname(file), m[1]!);
      const found = [target, `${target}.ts`, `${target}/index.ts`].some((t) => build.files.has(t));
      expect({ file, imports: m[1], found }).toEqual({ file, imports: m[1], found: true });
    }
  }
});

test('.dockerignore keeps local state, built output and NATS secrets out of the build context', () => {
  const ignored = dockerignore(readFileSync(path.join(ROOT, '.dockerignore'), 'utf8'));
  for (const p of ['node_modules/x', 'dist/src/index.js', '.git/HEAD', 'nats-lab/worker.nk', 'nats-lab/auth.conf', 'other/lab/node-a.nk', 'lab.creds', '.env', 'bench/results/x.json', 'x.log']) {
    expect({ p, ignored: ignored(p) }).toEqual({ p, ignored: true });
  }
  for (const p of ['package.json', 'package-lock.json', 'src/index.ts', 'examples/lkp/tests/echo-client', 'bin/cluster-sync']) {
    expect({ p, ignored: ignored(p) }).toEqual({ p, ignored: false });
  }
  expect(readdirSync(path.join(ROOT, 'examples'))).toEqual(expect.arrayContaining(['jobs', 'cluster', 'lkp']));
});
