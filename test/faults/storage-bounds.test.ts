import type { Redis } from 'ioredis';
import { dataBytes } from '../../src/bus/messages';
import { Keys } from '../../src/core/keys';
import { messageIdBytes, messageRecordBytes, messagesHashBytes, redisHashBytes } from '../../src/fold/storage-bounds';
import type { SchedulerHandle } from '../../src/scheduler/start';
import type { SubmitMessage } from '../../src/scheduler/jobs-route';
import { post, startTestScheduler } from '../scheduler/scheduler-helpers';
import { note } from './summary';
import { useTestServers } from '../helpers/use-test-servers';

/**
 * Issue 23, item 3: storage bounded by what was sent. Through the legacy
 * endpoint, both nodes of a 2-node cluster fill every one of the 256
 * message IDs with the most data allowed, made of the character JSON
 * escapes (`"`: two bytes stored), then wait on them many times. The
 * messages hash and the reports hash stay within the bounds docs/bounds.md
 * states (src/fold/storage-bounds.ts), in bytes and in Redis memory. (Before:
 * 4 KiB of \x01 per send was stored at ~6x, and every send or wait stored the
 * ID's whole state again: 512 sends + 300 waits took Redis from 1.6 to 56.7 MB.)
 */
const lab = useTestServers({ workers: { sweepEveryMs: 3_600_000 } });
const LEGACY = '/~lkp/cgi-bin/lkp-cluster-sync';
let scheduler: SchedulerHandle;
let redis: Redis;

beforeAll(async () => {
  scheduler = await startTestScheduler(lab.res, lab.config, { longPollMs: 60_000 });
  redis = lab.res.redis(lab.config);
});

/** Runs `tasks` with at most `width` at once. */
async function limited<T>(tasks: (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

async function ask(query: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${scheduler.url}${LEGACY}?${query}`);
  return { status: r.status, text: await r.text() };
}

/** 812 legacy requests through real workers: minutes on a busy 2-core machine. Jest's timeout is the only limit. */
const STORAGE_TEST_MS = 300_000;

test(
  '256 IDs full of escaped data from both nodes, and 300 waits, stay within the stated bounds',
  async () => {
    const r = await post(
      scheduler.url,
      JSON.stringify({ job: 'suite: t\nif role server:\n  srv:\nif role client:\n  cli:\n', cluster_spec: 'nodes:\n  box--1: { roles: [server] }\n  box--2: { roles: [client] }\n' }),
      'application/json',
    );
    expect(r.status).toBe(200);
    const [a, b] = r.body as SubmitMessage[];
    const keys = new Keys(lab.config.keyPrefix);
    const cid = a!.cluster;

    // Control characters are refused (they were stored at six bytes each), and data is counted as stored.
    const ctl = await ask(`job_id=${a!.job_id}&state=send&msg=m000&k=${encodeURIComponent('\x01'.repeat(100))}`);
    expect(ctl).toEqual({ status: 400, text: 'query: data: k: no control characters (TAB is allowed)\n' });
    const quotes = (n: number): string => encodeURIComponent('"'.repeat(n));
    const over = await ask(`job_id=${a!.job_id}&state=send&msg=m000&k=${quotes(2047)}`);
    expect(over.status).toBe(400);
    expect(over.text).toMatch(/at most 4096 bytes as key=value lines, counted as stored/);

    // The most each node may send for each ID: k=<2046 quotes> is 1 + 4092 + 2 = 4095 stored bytes.
    expect(dataBytes({ k: '"'.repeat(2046) })).toBe(4095);
    const ids = Array.from({ length: 256 }, (_, i) => `m${String(i).padStart(3, '0')}`);
    const used0 = await usedMemory();
    const sends = await limited(
      ids.flatMap((id) => [a!, b!].map((n) => () => ask(`job_id=${n.job_id}&state=send&msg=${id}&k=${quotes(2046)}`))),
      8,
    );
    expect(sends.filter((s) => s.status !== 200 || s.text !== 'ok')).toEqual([]);
    // 300 waits (each its own report and dedupe record), answered at once: the IDs are sent.
    const waits = await limited(
      Array.from({ length: 300 }, (_, i) => () => ask(`job_id=${(i % 2 ? a : b)!.job_id}&state=wait&msg=${ids[i % 256]!}`)),
      8,
    );
    expect(waits.filter((w) => w.status !== 200 || !w.text.startsWith('ok\nk='))).toEqual([]);

    const lengths = { job: Math.max(a!.job_id.length, b!.job_id.length), msg: 4, role: 0 };
    const values = (await redis.hvals(keys.messages(cid))).map((v) => Buffer.byteLength(v));
    expect(values).toHaveLength(256);
    expect(Math.max(...values)).toBeLessThanOrEqual(messageIdBytes(2, lengths));
    const messagesBytes = values.reduce((s, v) => s + v, 0) + 256 * 4;
    expect(messagesBytes).toBeLessThanOrEqual(messagesHashBytes(2, lengths));
    const messagesMemory = Number(await redis.call('MEMORY', 'USAGE', keys.messages(cid), 'SAMPLES', '0'));
    expect(messagesMemory).toBeLessThanOrEqual(redisHashBytes(256, messagesHashBytes(2, lengths)));

    const records = Object.entries(await redis.hgetall(keys.reports(cid))).filter(([, v]) => v.includes('"message"'));
    expect(records.length).toBe(512 + 300);
    const recordBound = messageRecordBytes(lengths);
    const biggest = Math.max(...records.map(([f, v]) => Buffer.byteLength(f) + Buffer.byteLength(v)));
    expect(biggest).toBeLessThanOrEqual(recordBound);
    const reportsMemory = Number(await redis.call('MEMORY', 'USAGE', keys.reports(cid), 'SAMPLES', '0'));
    const reportsBound = redisHashBytes(records.length + 4, (records.length + 4) * recordBound);
    expect(reportsMemory).toBeLessThanOrEqual(reportsBound);

    // The whole of Redis grew by about what those two hashes take (plus the event streams and BullMQ's jobs).
    const grew = (await usedMemory()) - used0;
    expect(grew).toBeLessThanOrEqual(redisHashBytes(256, messagesHashBytes(2, lengths)) + reportsBound + 2 * 1024 * 1024);
    note(
      'storage: 2 nodes x 256 IDs x 4,095 stored bytes (escaped data) + 300 waits, legacy endpoint',
      `messages hash ${kb(messagesMemory)} (bound ${kb(redisHashBytes(256, messagesHashBytes(2, lengths)))}), reports hash ${kb(reportsMemory)} for ${records.length} records (bound ${kb(reportsBound)}; biggest record ${biggest} B of ${recordBound}), Redis used_memory +${kb(grew)}`,
    );
  },
  STORAGE_TEST_MS,
);

async function usedMemory(): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}

function kb(n: number): string {
  return `${(n / 1024).toFixed(0)} KiB`;
}
