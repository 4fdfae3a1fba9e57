import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packTarball, run } from '../helpers/pack';
import { ROOT } from '../helpers/processes';

/**
 * The package as users install a CLI: `npm pack`, then `npm install -g` of
 * the tarball into a throw-away prefix (never the real global one), then
 * `cluster-sync --help` and `cluster-sync demo` from a folder that has
 * nothing of the project in it. The demo starts its own Redis and NATS on
 * loopback, so this needs redis-server and nats-server like the other tests.
 * (`npm pack` runs with --ignore-scripts: see packTarball.)
 */
const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-package-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The environment of a user's shell: no CS_* settings, so the demo starts its own servers. */
function userEnv(prefix: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CS_') && !k.startsWith('npm_')) env[k] = v;
  env.PATH = `${path.join(prefix, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  return env;
}

test('prepack builds dist, and the package ships the CLI, the compiled code with its Lua and UI files, and the demo examples', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; files: string[]; bin: Record<string, string> };
  expect(pkg.scripts.prepack).toBe('npm run build');
  expect(pkg.bin['cluster-sync']).toBe('bin/cluster-sync');
  expect(pkg.files).toEqual(expect.arrayContaining(['bin/', 'dist/src/', 'dist/workers/', 'examples/']));
});

test('npm pack, npm install -g of the tarball into a temporary prefix: cluster-sync --help and cluster-sync demo work from any folder', async () => {
  const tarball = await packTarball(dir);
  const files = await run('tar', ['tzf', tarball], { cwd: dir });
  for (const f of [
    'package/bin/cluster-sync',
    'package/dist/src/cli/main.js',
    'package/dist/src/fold/lua/fold-batch.lua',
    'package/dist/src/ui/static/index.html',
    'package/examples/jobs/echo.yaml',
    'package/examples/cluster/cs-demo',
    'package/examples/lkp/daemon/echo-server',
    'package/examples/lkp/tests/echo-client',
  ]) {
    expect(files.out.split('\n')).toContain(f);
  }
  expect(files.out).not.toMatch(/^package\/(test|node_modules|src)\//m);

  const prefix = path.join(dir, 'prefix');
  const env = userEnv(prefix);
  const installed = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: dir, env });
  expect({ code: installed.code, out: installed.out }).toMatchObject({ code: 0 });

  const elsewhere = mkdtempSync(path.join(dir, 'cwd-'));
  const help = await run('cluster-sync', ['--help'], { cwd: elsewhere, env });
  expect({ code: help.code, out: help.out }).toMatchObject({ code: 0 });
  expect(help.out).toMatch(/Usage: cluster-sync/);
  expect(help.out).toMatch(/demo/);

  const demo = await run('cluster-sync', ['demo'], { cwd: elsewhere, env });
  expect({ code: demo.code, out: demo.out }).toMatchObject({ code: 0 });
  expect(demo.out).toContain('summary cluster');
  expect(demo.out).toContain('the client test ran and passed');
  expect(readdirSync(elsewhere)).toEqual([]);
}, 240_000);
