import { randomBytes } from 'node:crypto';
import type { Environment } from './environment';
import { summarize } from './stats';
import type { Summary } from './stats';

export interface FloorResult {
  /** NATS request-reply round trip, bench -> NATS -> responder -> NATS -> bench, ms. */
  nats: Summary;
  /** EVALSHA of a one-line script, bench -> Redis -> bench, ms. */
  redis: Summary;
}

/**
 * What the hardware allows: one NATS request-reply (a report-sized body, the
 * responder on its own connection) and one Redis EVALSHA, each measured one
 * at a time on the servers the barriers use.
 */
export async function measureFloor(env: Environment, samples: number): Promise<FloorResult> {
  const subject = `${env.config.subjectPrefix}.bench.echo`;
  const responder = env.nodeNats[0] ?? env.nc;
  const sub = responder.subscribe(subject, { callback: (err, msg) => !err && msg.respond(msg.data) });
  await responder.flush();
  const body = randomBytes(160).toString('base64');
  const payload = new TextEncoder().encode(JSON.stringify({ v: 1, id: 'x', body }));
  const nats: number[] = [];
  for (let i = 0; i < samples + 100; i++) {
    const t = performance.now();
    await env.nc.request(subject, payload, { timeout: 5000 });
    if (i >= 100) nats.push(performance.now() - t);
  }
  sub.unsubscribe();

  const sha = (await env.redis.script('LOAD', 'return ARGV[1]')) as string;
  const redis: number[] = [];
  for (let i = 0; i < samples + 100; i++) {
    const t = performance.now();
    await env.redis.evalsha(sha, 0, 'x');
    if (i >= 100) redis.push(performance.now() - t);
  }
  return { nats: summarize(nats), redis: summarize(redis) };
}
