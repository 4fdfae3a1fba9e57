/*
 * Design note: `Idempotency-Key` for the requests that create clusters.
 *
 * `POST /jobs` and `POST /clusters/:id/rerun` create clusters, then wait for
 * a Redis replica before they answer. An answer that never came, or a 503
 * (no replica acknowledged in time: the clusters may be lost in a failover,
 * or may not), leaves the client not knowing whether its clusters exist; the
 * CLI asks again by itself. Sent again blindly, the request would create the
 * clusters twice. With a key (the CLI sends a new random one per command and
 * the same one on each of its own retries), the first request claims the key
 * (`SET NX`, pending for {@link PENDING_MS}), runs, and records its answer for
 * {@link KEEP_MS}; a repeat gets that answer (its record refreshed, so the
 * caller's WAIT covers it) and creates nothing. The record is written with
 * the clusters, so a failover that loses the clusters loses the record too,
 * and the repeat then creates them anew. A repeat while the first still runs
 * is refused (409); so is the key sent with a different request.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from '../core/keys';
import { InvalidInputError, RejectedError } from '../core/errors';
import { idProblem } from '../core/ids';

/** How long a claimed key stays pending if its request never records an answer (a crash), ms. */
export const PENDING_MS = 60_000;
/** How long an answer is kept for repeats, ms: one day. */
export const KEEP_MS = 24 * 3_600_000;
/** The header, as Fastify gives it (lower case). */
export const IDEMPOTENCY_HEADER = 'idempotency-key';

interface IdempotencyRecord<T> {
  state: 'pending' | 'done';
  fingerprint: string;
  answer?: T;
}

/** The fingerprint of a request: what a repeat must send again to get the first one's answer. */
export function fingerprintOf(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.length}:${p}`);
  return h.digest('hex');
}

/** The header's value, checked (400 naming it), or undefined when it was not sent. */
export function idempotencyKeyOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const raw = headers[IDEMPOTENCY_HEADER];
  if (raw === undefined) return undefined;
  const problem = Array.isArray(raw) ? 'was sent more than once' : idProblem(raw, 'idempotency key');
  if (problem !== undefined) throw new InvalidInputError('request header', problem, 'Idempotency-Key');
  return raw as string;
}

/**
 * Runs `run` once per (`scope`, `key`): the first request runs it and
 * records its answer; a repeat with the same `fingerprint` gets that answer.
 * Without a key, `run` just runs. Throws RejectedError (409) for a repeat
 * while the first runs, or for the key sent with a different request.
 */
export async function runOnce<T>(redis: Redis, keys: Keys, scope: string, key: string | undefined, fingerprint: string, run: () => Promise<T>): Promise<{ answer: T; repeated: boolean }> {
  if (key === undefined) return { answer: await run(), repeated: false };
  const k = keys.idempotency(scope, key);
  const claim: IdempotencyRecord<T> = { state: 'pending', fingerprint };
  if ((await redis.set(k, JSON.stringify(claim), 'PX', PENDING_MS, 'NX')) !== 'OK') {
    const raw = await redis.get(k);
    // Gone between the two calls (expired): claimed again from the start.
    if (raw === null) return runOnce(redis, keys, scope, key, fingerprint, run);
    const seen = JSON.parse(raw) as IdempotencyRecord<T>;
    if (seen.fingerprint !== fingerprint) throw new RejectedError(`Idempotency-Key ${key} was sent before with a different request; send a new key`);
    if (seen.state !== 'done') throw new RejectedError(`a request with Idempotency-Key ${key} is still running; ask again in a moment`);
    // A write, so that the caller's WAIT covers the record (and the clusters written before it).
    await redis.pexpire(k, KEEP_MS);
    return { answer: seen.answer as T, repeated: true };
  }
  let answer: T;
  try {
    answer = await run();
  } catch (err) {
    // Nothing recorded: a repeat runs again (a refusal, or a submit that left nothing, as src/cluster/submit.ts promises).
    await redis.del(k).catch(() => undefined);
    throw err;
  }
  const done: IdempotencyRecord<T> = { state: 'done', fingerprint, answer };
  await redis.set(k, JSON.stringify(done), 'PX', KEEP_MS);
  return { answer, repeated: false };
}
