import { readFileSync } from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { ROOT } from '../helpers/processes';

/**
 * There is no Docker engine here, so compose.yaml cannot be brought up in a
 * test; this checks it says what docs/setting-up-a-lab.md promises: every service, and the
 * settings each one needs to find the others.
 */
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown>;
}

const compose = yaml.load(readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8')) as { services: Record<string, Service> };
const labPage = readFileSync(path.join(ROOT, 'docs', 'setting-up-a-lab.md'), 'utf8');

test('every service docs/setting-up-a-lab.md names is in compose.yaml', () => {
  const section = /### Docker Compose([\s\S]*?)(?:\n##|$)/.exec(labPage)?.[1] ?? '';
  const named = [...section.matchAll(/`([a-z]+)` service/g)].map((m) => m[1]);
  expect(named.length).toBeGreaterThanOrEqual(4);
  for (const name of named) expect(Object.keys(compose.services)).toContain(name);
});

test.each(['worker', 'scheduler'])('the %s service runs the cluster-sync command with the servers it needs', (name) => {
  const svc = compose.services[name]!;
  expect(svc.build).toBeDefined();
  expect(svc.command?.[0]).toBe(name);
  expect(svc.environment?.CS_REDIS_URL).toBe('redis://redis:6379');
  expect(svc.environment?.CS_NATS_URL).toBe('nats://nats:4222');
  expect(Object.keys(svc.depends_on ?? {})).toEqual(expect.arrayContaining(['redis', 'nats']));
});

test('the scheduler requires an API token and the Redis keeps an append-only file', () => {
  expect(compose.services.scheduler!.environment?.CS_API_TOKEN).toMatch(/^\$\{CS_API_TOKEN:\?/);
  expect(compose.services.redis!.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--appendfsync', 'always']));
});

test('the Dockerfile starts the same command line the docs document', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  expect(dockerfile).toMatch(/ENTRYPOINT \["node", "dist\/src\/cli\/main\.js"\]/);
});
