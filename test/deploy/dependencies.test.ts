import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { run } from '../helpers/pack';
import { ROOT } from '../helpers/processes';

/**
 * The lock file as a clean clone meets it: `npm ci` accepts it (it is in
 * step with package.json, other platforms' optional packages included), and
 * no locked package refuses this Node.js (engine-strict). `npm ci --dry-run`
 * in a folder holding only the two files reads the lock, not the registry.
 */
const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test(`npm ci accepts the lock file, and every locked package supports Node.js ${process.version}`, async () => {
  for (const f of ['package.json', 'package-lock.json']) copyFileSync(path.join(ROOT, f), path.join(dir, f));
  const ci = await run('npm', ['ci', '--dry-run', '--engine-strict', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir });
  expect({ code: ci.code, out: ci.out }).toEqual({ code: 0, out: expect.stringMatching(/added \d+ packages/) as unknown });
});

test("fastify's inject sends cookies with the cookie version the override pins (light-my-request's one use of it)", async () => {
  const app = Fastify();
  app.get('/', (req) => ({ cookie: req.headers.cookie }));
  const res = await app.inject({ method: 'GET', url: '/', cookies: { session: 'a b', lab: 'one' } });
  await app.close();
  expect(res.json()).toEqual({ cookie: 'session=a%20b; lab=one' });
});
