import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/processes';

/**
 * CI runs the README's two commands: `.ci/run` installs the same system
 * packages as the README's command 1 (and CONTRIBUTING's set-up), installs
 * node_modules with `npm ci` (so a lock file out of step with package.json
 * fails CI), and runs `npm test`.
 */
const ciRun = readFileSync(path.join(ROOT, '.ci/run'), 'utf8');

/** The packages of the first `apt-get install` line of `file` that also runs `npm ci`. */
function aptPackages(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const line = text.split('\n').find((l) => /apt-get install/.test(l) && /npm ci\b/.test(l)) ?? text.split('\n').find((l) => /apt-get install/.test(l));
  const list = /apt-get install (?:-\S+ )*([^&]+?)\s*(&&|$)/.exec(line ?? '')?.[1];
  if (!list) throw new Error(`${file} has no apt-get install line`);
  return list.split(/\s+/).sort();
}

test('.ci/run installs node_modules with npm ci, never npm install, then runs npm test', () => {
  const commands = ciRun.split('\n').filter((l) => !l.trim().startsWith('#'));
  expect(commands.some((l) => /^npm ci\b/.test(l.trim()))).toBe(true);
  expect(commands.join('\n')).not.toMatch(/npm install/);
  expect(commands.some((l) => /\bnpm test\b/.test(l))).toBe(true);
});

test.each(['README.md', 'CONTRIBUTING.md'])('.ci/run installs exactly the system packages of the set-up command in %s, and that command uses npm ci', (file) => {
  const packages = /^PACKAGES=\(([^)]*)\)/m.exec(ciRun)?.[1]?.split(/\s+/).filter(Boolean).sort();
  expect(packages).toEqual(['chromium', 'curl', 'iproute2', 'nats-server', 'redis-server', 'wget']);
  expect(aptPackages(file)).toEqual(packages);
  expect(readFileSync(path.join(ROOT, file), 'utf8')).toMatch(/apt-get install -y [^\n]*&& npm ci\b/);
});
