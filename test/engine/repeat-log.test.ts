import { Writable } from 'node:stream';
import pino from 'pino';
import { RepeatLog } from '../../workers/repeat-log';

/** Issue 10 item 3: a Redis outage fails every report the same way; the log says so once per interval, with a count. */
test('an error repeated within the interval is counted, then logged once with its count', () => {
  jest.useFakeTimers();
  try {
    const lines: { msg: string; repeated?: number; err?: { message: string } }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        done();
      },
    });
    const repeats = new RepeatLog(pino({ base: undefined }, sink), 10_000);
    const oom = new Error("OOM command not allowed when used memory > 'maxmemory'.");
    for (let i = 0; i < 50; i++) repeats.error('could not enqueue reports', oom);
    repeats.error('could not enqueue reports', new Error('Connection is closed.'));
    expect(lines.map((l) => l.err?.message)).toEqual([oom.message, 'Connection is closed.']);
    jest.advanceTimersByTime(10_000);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ msg: 'could not enqueue reports (49 more times in the last 10s)', repeated: 49, err: { message: oom.message } });
    // Quiet for a whole interval: the next one is logged at once again.
    jest.advanceTimersByTime(10_000);
    repeats.error('could not enqueue reports', oom);
    expect(lines).toHaveLength(4);
    repeats.close();
  } finally {
    jest.useRealTimers();
  }
});
