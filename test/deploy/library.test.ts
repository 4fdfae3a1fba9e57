import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { nodesJob, submitInline } from '../helpers/cluster';
import { packTarball, run, runOk } from '../helpers/pack';
import { ROOT, envFor } from '../helpers/processes';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * The package as users build on it: `npm pack`, the tarball unpacked into
 * an empty project's node_modules, then a TypeScript file that imports
 * `NodeClient` from 'cluster-sync' compiled with the user's own strict tsc
 * (both module resolutions a user may have: node16, which reads `exports`,
 * and node10, which reads `types` and `typesVersions`) and run against real
 * Redis, NATS and workers: two nodes pass the start barrier.
 *
 * No `npm install` here (it would need the registry): the project's
 * dependencies are linked from this repository's node_modules, only the ones
 * package.json's `dependencies` names, so a module the package uses but
 * does not declare is still not found.
 */
const lab = useTestServers({ workers: true });
const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-library-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  main: string;
  types: string;
  exports: Record<string, { types: string; default: string } | string>;
  dependencies: Record<string, string>;
};

/** What a user writes: typed imports from the package root and the workers subpath; prints its answers as one JSON line. */
const USER_TS = `
import { NodeClient, Subjects, connectNats, loadConnectionConfig, TimeoutError } from 'cluster-sync';
import type { BarrierAnswer, NodeIdentity } from 'cluster-sync';
import { startWorkers } from 'cluster-sync/workers';
import type { WorkersOptions } from 'cluster-sync/workers';

async function main(): Promise<void> {
  const nodes = JSON.parse(process.argv[2] ?? '[]') as NodeIdentity[];
  const config = loadConnectionConfig();
  const nc = await connectNats(config, 'library-user');
  const subjects = new Subjects(config.subjectPrefix);
  const clients = nodes.map((id) => new NodeClient(nc, subjects, id));
  await Promise.all(clients.map((c) => c.start()));
  const answers: BarrierAnswer[] = await Promise.all(clients.map((c) => c.wait('wait_start', { timeoutMs: 60_000 })));
  for (const c of clients) await c.close();
  await nc.drain();
  const options: WorkersOptions = { concurrency: 1 };
  const timeout = new TimeoutError('x');
  process.stdout.write(JSON.stringify({ answers: answers.map((a) => [a.cluster, a.barrier, a.result]), startWorkers: typeof startWorkers, options, timeoutIsError: timeout instanceof Error }) + '\\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
`;

/** What a plain Node.js user writes: require() and import() of the built package; the root entry must not load the workers (they build on it, not it on them). */
const USER_CJS = `
const cs = require('cluster-sync');
const rootLoadsWorkers = Object.keys(require.cache).some((f) => f.includes('/dist/workers/'));
const workers = require('cluster-sync/workers');
import('cluster-sync').then((esm) => {
  console.log(JSON.stringify({ NodeClient: typeof cs.NodeClient, MessageClient: typeof cs.MessageClient, startWorkers: typeof workers.startWorkers, esmNodeClient: esm.NodeClient === cs.NodeClient, rootLoadsWorkers }));
});
`;

/** The user's tsconfig (skipLibCheck, as `tsc --init` writes it: checking every dependency's declarations took 14 s of CPU; declarationImports checks ours). */
function tsconfig(moduleResolution: 'node16' | 'node10'): string {
  const module = moduleResolution === 'node16' ? 'node16' : 'commonjs';
  return JSON.stringify({
    compilerOptions: { strict: true, target: 'es2022', module, moduleResolution, outDir: `out-${moduleResolution}`, types: ['node'], skipLibCheck: true, noEmitOnError: true },
    files: ['user.ts'],
  });
}

/** An empty project with the packed package unpacked into node_modules/cluster-sync and its declared dependencies linked. */
async function userProject(): Promise<string> {
  const tarball = await packTarball(dir);
  const project = path.join(dir, 'project');
  const installed = path.join(project, 'node_modules', 'cluster-sync');
  mkdirSync(installed, { recursive: true });
  await runOk('tar', ['xzf', tarball, '-C', installed, '--strip-components=1'], { cwd: dir });
  for (const dep of [...Object.keys(pkg.dependencies), '@types/node']) {
    const link = path.join(project, 'node_modules', dep);
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules', dep), link, 'dir');
  }
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'library-user', private: true }));
  writeFileSync(path.join(project, 'user.ts'), USER_TS);
  writeFileSync(path.join(project, 'user-cjs.js'), USER_CJS);
  for (const res of ['node16', 'node10'] as const) writeFileSync(path.join(project, `tsconfig.${res}.json`), tsconfig(res));
  return project;
}

/** Every module the package's declaration files import or reference by name (comments left out), with the file. */
function declarationImports(pkgDir: string): { file: string; name: string }[] {
  const out: { file: string; name: string }[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, e.name);
      if (e.isDirectory()) walk(file);
      else if (e.name.endsWith('.d.ts')) {
        const text = readFileSync(file, 'utf8');
        for (const m of text.matchAll(/\/\/\/ <reference types="([^"]+)"/g)) out.push({ file, name: m[1]! });
        const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
        for (const m of code.matchAll(/(?:from\s+|import\()['"]([^'"]+)['"]/g)) if (!m[1]!.startsWith('.')) out.push({ file, name: m[1]! });
      }
    }
  };
  walk(path.join(pkgDir, 'dist'));
  return out;
}

test('package.json points main, types and exports at files the build writes', () => {
  expect(pkg.main).toBe('dist/src/index.js');
  expect(pkg.types).toBe('dist/src/index.d.ts');
  expect(pkg.exports['.']).toEqual({ types: './dist/src/index.d.ts', default: './dist/src/index.js' });
  expect(pkg.exports['./workers']).toEqual({ types: './dist/workers/index.d.ts', default: './dist/workers/index.js' });
});

test('a packed tarball in an empty project: strict tsc compiles a typed import of NodeClient, and it passes a real barrier; require() and import() work', async () => {
  const project = await userProject();
  // With skipLibCheck a declaration naming a module the user does not get (a dev-only one) would pass silently: every name is a dependency, or Node's.
  const imports = declarationImports(path.join(project, 'node_modules', 'cluster-sync'));
  expect(imports.length).toBeGreaterThan(20);
  for (const { file, name } of imports) {
    const pkgName = name.startsWith('@') ? name.split('/').slice(0, 2).join('/') : name.split('/')[0]!;
    const known = name === 'node' || name.startsWith('node:') || builtinModules.includes(name) || pkgName in pkg.dependencies;
    expect({ file, name, known }).toEqual({ file, name, known: true });
  }
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const res of ['node16', 'node10']) {
    const compiled = await run(process.execPath, [tsc, '-p', `tsconfig.${res}.json`], { cwd: project });
    expect({ moduleResolution: res, code: compiled.code, out: compiled.out }).toEqual({ moduleResolution: res, code: 0, out: '' });
  }

  const { job, spec } = nodesJob(2);
  for (const res of ['node16', 'node10']) {
    const [cluster] = await submitInline(lab.res, lab.config, job, spec);
    const ids = cluster!.jobs.map((j) => ({ cluster: j.cluster, job: j.job_id, token: j.token }));
    const out = await runOk(process.execPath, [path.join(`out-${res}`, 'user.js'), JSON.stringify(ids)], { cwd: project, env: envFor(lab.config) });
    expect(JSON.parse(out)).toEqual({
      answers: [
        [cluster!.cluster, 'start', 'start'],
        [cluster!.cluster, 'start', 'start'],
      ],
      startWorkers: 'function',
      options: { concurrency: 1 },
      timeoutIsError: true,
    });
  }

  const plain = await runOk(process.execPath, ['user-cjs.js'], { cwd: project });
  expect(JSON.parse(plain)).toEqual({ NodeClient: 'function', MessageClient: 'function', startWorkers: 'function', esmNodeClient: true, rootLoadsWorkers: false });
}, 240_000);
