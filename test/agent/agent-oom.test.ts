import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { note } from '../faults/summary';
import { submitInline } from '../helpers/cluster';
import { eventually } from '../helpers/servers';
import { useTestServers } from '../helpers/use-test-servers';
import { bullJob, daemon, scriptsTree, startAgent, steps, testScript } from './agent-helpers';

/**
 * Chaos finding (issue 14): while Redis was out of memory the dispatcher
 * refused takes with the OOM error, and the agent exited `setup_error` on any
 * refusal, so a passing fault of Redis ended a test machine's run. A refusal
 * because of Redis is now marked retryable and the agent asks again.
 */
const lab = useTestServers({ workers: true });
const { res } = lab;

test('an agent that asks for its job while Redis is out of memory waits, then takes it and runs the test to the end', async () => {
  const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'cs-oom-')), 'log');
  const tree = scriptsTree({ 'daemon/d1': daemon('d1'), 'tests/t1': testScript('t1') });
  const spec = 'nodes:\n  srv--1: { roles: [server] }\n  cli--1: { roles: [client] }\n';
  const [cluster] = await submitInline(res, lab.config, `suite: t\ncluster: cs-test\nlog: ${log}\nif role server:\n  d1:\nif role client:\n  t1:\n`, spec);
  const redis = res.redis(lab.config);
  await redis.config('SET', 'maxmemory-policy', 'noeviction');
  await redis.config('SET', 'maxmemory', '1');
  let srv: Awaited<ReturnType<typeof startAgent>>;
  try {
    srv = await startAgent(res, lab.config, 'srv', tree);
    await eventually(() => srv.lines.some((l) => l.includes('could not hand out a job just now') && l.includes('OOM')), 'the agent to be told "not now"');
  } finally {
    await redis.config('SET', 'maxmemory', '0');
  }
  const cli = await startAgent(res, lab.config, 'cli', tree);
  expect(await Promise.all([srv.code, cli.code])).toEqual([0, 0]);
  expect(steps(cli).find((x) => x.step === 'end')?.result).toBe('passed');
  for (const j of cluster!.jobs) expect((await bullJob(res, lab.config, j.queue, j.job_id)).state).toBe('completed');
  note(
    'an agent asks for its job while Redis is out of memory (maxmemory 1 B)',
    'told "not now" (retryable), kept asking; after memory returned it took the job, both nodes passed, both node jobs completed',
  );
});
