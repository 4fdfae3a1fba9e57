import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import { connectNats } from '../../src/bus/connect';
import { startNats } from '../../src/services/local-servers';
import type { NatsServer } from '../../src/services/local-servers';
import { writeLab } from '../helpers/nats-lab';
import type { Lab } from '../helpers/nats-lab';
import { ROOT } from '../helpers/processes';

/**
 * There is no Docker engine here, so compose.yaml is never brought up in a
 * test. What is checked instead: it parses; every service is there with the
 * settings it needs to find the others; every published port is bound to
 * loopback (with the defaults of its `${VAR:-default}`) and leaves a host's
 * own Redis and NATS ports alone; and its NATS wiring works: the files it
 * mounts are the ones the real `cluster-sync nats-config` writes, a real
 * nats-server started with that auth.conf accepts the worker and the
 * scheduler with exactly the settings compose gives them, and refuses a
 * connection without credentials.
 */
interface BindMount {
  type: 'bind';
  source: string;
  target: string;
  read_only?: boolean;
  bind?: { create_host_path?: boolean };
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown>;
  ports?: string[];
  volumes?: (string | BindMount)[];
}

const text = readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8');
const compose = yaml.load(text) as { services: Record<string, Service> };
const services = compose.services;

/** Compose's interpolation with an empty environment: `${X:-default}` is the default, `${X:?message}` is refused. */
function withDefaults(value: string): string {
  return value.replace(/\$\{([A-Z_]+)(?::?([-?]))?([^}]*)\}/g, (_m, name: string, how: string | undefined, rest: string) => {
    if (how === '-') return rest;
    throw new Error(`compose.yaml needs ${name} with no default (${rest})`);
  });
}

/** A published port in compose's short syntax, `[ip:]host:container`. */
function published(spec: string): { ip: string | undefined; host: number; container: number } {
  const parts = withDefaults(spec).split(':');
  const container = Number(parts.pop());
  const host = Number(parts.pop());
  return { ip: parts.length ? parts.join(':') : undefined, host, container };
}

/** The bind mount of `svc` whose target is `target`. */
function mountAt(svc: Service, target: string): BindMount | undefined {
  return svc.volumes?.find((v): v is BindMount => typeof v !== 'string' && v.target === target);
}

test('compose.yaml has Redis, NATS, the workers and the scheduler; the two cluster-sync services find the servers', () => {
  expect(Object.keys(services).sort()).toEqual(['nats', 'redis', 'scheduler', 'worker']);
  for (const name of ['worker', 'scheduler']) {
    const svc = services[name]!;
    expect(svc.build).toBeDefined();
    expect(svc.command?.[0]).toBe(name);
    expect(svc.environment?.CS_REDIS_URL).toBe('redis://redis:6379');
    expect(svc.environment?.CS_NATS_URL).toBe('nats://nats:4222');
    expect(Object.keys(svc.depends_on ?? {})).toEqual(expect.arrayContaining(['redis', 'nats']));
  }
});

test('the scheduler requires an API token and the Redis keeps an append-only file', () => {
  expect(services.scheduler!.environment?.CS_API_TOKEN).toMatch(/^\$\{CS_API_TOKEN:\?/);
  expect(services.redis!.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--appendfsync', 'always']));
});

test('by default every published port is bound to 127.0.0.1, and none is a host Redis or NATS port', () => {
  const all = Object.entries(services).flatMap(([name, svc]) => (svc.ports ?? []).map((p) => ({ name, ...published(p) })));
  expect(all.map((p) => `${p.name} ${p.container}`).sort()).toEqual(['nats 4222', 'nats 8222', 'redis 6379', 'scheduler 3000']);
  for (const p of all) {
    expect({ service: p.name, ip: p.ip }).toEqual({ service: p.name, ip: '127.0.0.1' });
    expect([6379, 4222, 8222]).not.toContain(p.host);
  }
});

describe('the NATS users of `cluster-sync nats-config`', () => {
  let tmp: string;
  let lab: Lab;
  let nats: NatsServer;
  /** A compose bind source under ./nats-lab, as a path into this test's lab folder. */
  const hostPath = (source: string): string => {
    expect(source).toMatch(/^\.\/nats-lab\//);
    return path.join(lab.dir, source.slice('./nats-lab/'.length));
  };

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'cs-compose-'));
    const testboxes = readFileSync(path.join(ROOT, 'examples/nats/testboxes.txt'), 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    lab = await writeLab(path.join(tmp, 'nats-lab'), testboxes);
  });
  afterAll(async () => {
    await nats?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the nats service runs with the auth.conf nats-config writes, which has an authorization block; a real nats-server starts with it', async () => {
    const cmd = services.nats!.command ?? [];
    const conf = cmd[cmd.indexOf('-c') + 1];
    expect(conf).toBeDefined();
    const mount = mountAt(services.nats!, conf!);
    expect(mount).toMatchObject({ type: 'bind', read_only: true, bind: { create_host_path: false } });
    const file = hostPath(mount!.source);
    expect(file).toBe(lab.authConf);
    expect(readFileSync(file, 'utf8')).toMatch(/^authorization \{/m);
    nats = await startNats({ config: file });
  });

  test.each(['worker', 'scheduler'])('the %s service connects as its own nats-config user with the settings compose gives it', async (name) => {
    const env = services[name]!.environment ?? {};
    const mount = mountAt(services[name]!, env.CS_NATS_CREDS ?? '');
    expect(mount).toMatchObject({ type: 'bind', read_only: true, bind: { create_host_path: false } });
    const seed = hostPath(mount!.source);
    expect(seed).toBe(lab.env(name).CS_NATS_CREDS);
    expect(existsSync(seed)).toBe(true);
    expect({ inbox: env.CS_NATS_INBOX_PREFIX, prefix: env.CS_SUBJECT_PREFIX }).toEqual({ inbox: lab.env(name).CS_NATS_INBOX_PREFIX, prefix: lab.env(name).CS_SUBJECT_PREFIX });
    const config = { redisUrl: 'redis://127.0.0.1:1', natsUrl: nats.url, subjectPrefix: env.CS_SUBJECT_PREFIX!, keyPrefix: '', natsCreds: seed, natsInboxPrefix: env.CS_NATS_INBOX_PREFIX };
    const nc = await connectNats(config, `compose-${name}`, { maxReconnectAttempts: 0 });
    await nc.flush();
    await nc.close();
  });

  test('without credentials the server refuses the connection', async () => {
    const config = { redisUrl: 'redis://127.0.0.1:1', natsUrl: nats.url, subjectPrefix: 'cs', keyPrefix: '' };
    await expect(connectNats(config, 'compose-anonymous', { maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
  });
});

test('every service docs/setting-up-a-lab.md names is in compose.yaml', () => {
  const labPage = readFileSync(path.join(ROOT, 'docs', 'setting-up-a-lab.md'), 'utf8');
  const section = /### Docker Compose([\s\S]*?)(?:\n##|$)/.exec(labPage)?.[1] ?? '';
  const named = [...section.matchAll(/`([a-z]+)` service/g)].map((m) => m[1]);
  expect(named.length).toBeGreaterThanOrEqual(4);
  for (const name of named) expect(Object.keys(services)).toContain(name);
});

test('the Dockerfile starts the same command line the docs document', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  expect(dockerfile).toMatch(/ENTRYPOINT \["node", "dist\/src\/cli\/main\.js"\]/);
});
