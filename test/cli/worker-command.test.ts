import { CliProcess, startWorkerProcess } from '../helpers/processes';
import { startTestServers } from '../helpers/servers';

test('a worker stops on SIGTERM even when Redis is already gone', async () => {
  const servers = await startTestServers();
  try {
    const worker = await startWorkerProcess(servers.config());
    await servers.redis.stop();
    // It stops by itself (exit 0); the SIGKILL below only ends a hang, which then fails the test with -1.
    worker.kill('SIGTERM');
    const timer = setTimeout(() => worker.kill('SIGKILL'), 50_000);
    const code = await worker.exited;
    clearTimeout(timer);
    // 0, not the SIGKILL at 20 s: it stopped by itself.
    expect(code).toBe(0);
    expect(worker.stdout + worker.stderr).toContain('workers did not stop in time (is Redis down?); closing connections');
  } finally {
    await servers.stop();
  }
});

test('a worker stops on SIGTERM by itself when Redis and NATS are both gone', async () => {
  const servers = await startTestServers();
  try {
    const worker = await startWorkerProcess(servers.config());
    await Promise.all([servers.redis.stop(), servers.nats.stop()]);
    worker.kill('SIGTERM');
    const timer = setTimeout(() => worker.kill('SIGKILL'), 50_000);
    const code = await worker.exited;
    clearTimeout(timer);
    // 0: it stopped by its own close, not at the CLI's 10 s deadline (exit 1, "did not stop within").
    expect(code).toBe(0);
    expect(worker.stderr).not.toContain('did not stop within');
  } finally {
    await servers.stop();
  }
});

test.each(['--retention', '--submit-grace', '--end-grace'])('worker %s with a value that is no duration is refused before anything starts, naming the flag', async (flag) => {
  const p = new CliProcess(['worker', flag, 'soon'], { ...process.env, CS_REDIS_URL: 'redis://127.0.0.1:1', CS_NATS_URL: 'nats://127.0.0.1:1' });
  expect(await p.exited).toBe(2);
  expect(p.stderr).toContain(flag);
  expect(p.stderr).toContain('"soon"');
});
