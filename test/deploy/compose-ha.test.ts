import { readFileSync } from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { loadConnectionConfig } from '../../src/core/config';
import { ROOT } from '../helpers/processes';

/**
 * compose.ha.yaml cannot be brought up here (no Docker engine); this parses
 * it and checks it is the layout docs/high-availability.md describes: three
 * hosts, each with a Redis, a sentinel, a NATS server of one cluster and a
 * worker, and every cluster-sync process finding Redis through the sentinels.
 */
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
}

const compose = yaml.load(readFileSync(path.join(ROOT, 'compose.ha.yaml'), 'utf8')) as { services: Record<string, Service> };
const svc = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`compose.ha.yaml has no service ${name}`);
  return s;
};

test.each(['a', 'b', 'c'])('host %s runs a Redis, a sentinel, a NATS server routed to the two others, and a worker', (h) => {
  expect(svc(`redis-${h}`).image).toBe('redis:7');
  expect(svc(`sentinel-${h}`).command?.join(' ')).toMatch(/sentinel monitor cs-primary redis-a 6379 2[\s\S]*--sentinel/);
  const routes = svc(`nats-${h}`).command ?? [];
  const others = ['a', 'b', 'c'].filter((o) => o !== h);
  expect(routes[routes.indexOf('--routes') + 1]).toBe(others.map((o) => `nats://nats-${o}:6222`).join(','));
  expect(svc(`worker-${h}`).command).toEqual(['worker']);
});

test('replicas follow redis-a, and every Redis refuses writes without a replica in reach', () => {
  for (const h of ['b', 'c']) expect(svc(`redis-${h}`).command?.slice(-3)).toEqual(['--replicaof', 'redis-a', '6379']);
  for (const h of ['a', 'b', 'c']) expect(svc(`redis-${h}`).command).toEqual(expect.arrayContaining(['--min-replicas-to-write', '1', '--min-replicas-max-lag', '10']));
});

test.each(['worker-a', 'worker-b', 'worker-c', 'scheduler-a', 'scheduler-b'])('%s reaches Redis through the sentinels with a configuration cluster-sync accepts', (name) => {
  const env = svc(name).environment ?? {};
  expect(env.CS_REDIS_URL).toBeUndefined();
  const config = loadConnectionConfig({}, env);
  expect(config.redisSentinels).toEqual(['a', 'b', 'c'].map((h) => ({ host: `sentinel-${h}`, port: 26379 })));
  expect(config.redisMaster).toBe('cs-primary');
  expect(config.minReplicas).toBe(1);
  expect(config.natsUrl.split(',')).toHaveLength(3);
});
