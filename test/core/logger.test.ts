import { InvalidInputError } from '../../src/core/errors';
import { createLogger, logLevel } from '../../src/core/logger';
import { CliProcess, envFor } from '../helpers/processes';
import { startTestServers } from '../helpers/servers';

/** `CS_LOG_LEVEL` as a user sets it: empty means unset, an unknown level is a clear error. */
describe('CS_LOG_LEVEL', () => {
  const saved = process.env.CS_LOG_LEVEL;
  afterEach(() => {
    if (saved === undefined) delete process.env.CS_LOG_LEVEL;
    else process.env.CS_LOG_LEVEL = saved;
  });

  test.each([[''], ['  ']])('set but empty (%j) counts as unset', (value) => {
    process.env.CS_LOG_LEVEL = value;
    // Unset in a jest worker means silent.
    expect(createLogger('t').level).toBe('silent');
    expect(createLogger('t', value).level).toBe('silent');
  });

  test('a level in any case is taken', () => {
    process.env.CS_LOG_LEVEL = 'Debug';
    expect(createLogger('t').level).toBe('debug');
  });

  test('an unknown level is an InvalidInputError naming the variable and the levels', () => {
    process.env.CS_LOG_LEVEL = 'verbose';
    expect(() => createLogger('t')).toThrow(InvalidInputError);
    expect(() => logLevel()).toThrow('CS_LOG_LEVEL: "verbose" is not a log level; use one of fatal, error, warn, info, debug, trace, silent (or leave it unset for info)');
  });

  test('the worker command: CS_LOG_LEVEL= starts and logs at info; CS_LOG_LEVEL=verbose exits 2 naming the variable', async () => {
    const servers = await startTestServers();
    const procs: CliProcess[] = [];
    try {
      const env = (level: string): NodeJS.ProcessEnv => {
        const e = envFor(servers.config(), { CS_LOG_LEVEL: level });
        delete e.JEST_WORKER_ID;
        return e;
      };
      const bad = new CliProcess(['worker'], env('verbose'));
      procs.push(bad);
      expect(await bad.exited).toBe(2); // bad input, as for any bad flag or file
      expect(bad.stderr).toContain('CS_LOG_LEVEL: "verbose" is not a log level; use one of fatal, error, warn, info, debug, trace, silent');
      const empty = new CliProcess(['worker'], env(''));
      procs.push(empty);
      await empty.waitFor(/workers ready/);
      expect(await empty.stop()).toBe(0);
    } finally {
      for (const p of procs) await p.stop();
      await servers.stop();
    }
    // Two worker starts and a stop, each a bounded wait on an event (processes.ts WAIT_MS, STOP_GRACE_MS):
    // at a load average of 38 on 2 cores they took over jest's default 60 s together.
  }, 180_000);
});
