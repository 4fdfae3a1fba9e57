import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { runAgent } from '../../src/agent/agent';
import type { AdmissionMode } from '../../src/admission/settings';
import { Output } from '../../src/agent/output';
import { connectNats } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import type { ConnectionConfig } from '../../src/core/config';
import { Keys } from '../../src/core/keys';
import { testboxQueueName } from '../../src/queue/queues';
import type { Resources } from '../helpers/servers';

/** A scripts tree in a fresh temporary folder: `{ 'daemon/d1': '#!/bin/sh ...' }`, each made executable. */
export function scriptsTree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'cs-scripts-'));
  mkdirSync(path.join(root, 'daemon'));
  mkdirSync(path.join(root, 'tests'));
  for (const [name, text] of Object.entries(files)) {
    const p = path.join(root, name);
    writeFileSync(p, text);
    chmodSync(p, 0o755);
  }
  return root;
}

/** A daemon that logs its start and pid, then lives until stopped (or its stdin closes). */
export const daemon = (name: string): string => `#!/bin/sh\necho "${name} start pid=$$ roles=$node_roles" >> "$log"\nread _ || true\n`;
/**
 * A test that logs what it saw and exits with $NAME_exit (default 0). First
 * it waits until each daemon named in the job variable `await_daemons` has
 * logged its start, as a real test waits for its server to listen: the agent
 * promises that daemons are started before `wait_ready`, not that their shell
 * has run its first line by the time another node's test runs.
 */
export const testScript = (name: string): string =>
  `#!/bin/sh\nfor d in $await_daemons; do until grep -q "^$d start" "$log" 2>/dev/null; do sleep 0.05; done; done\necho "${name} ran roles=$node_roles server=$server client=$client direct_server_ips=$direct_server_ips port=$port myvar=$myvar" >> "$log"\nexit \${${name}_exit:-0}\n`;

export function readLog(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export function pidsIn(lines: string[]): number[] {
  return lines.flatMap((l) => [...l.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface InProcessAgent {
  lines: string[];
  code: Promise<number>;
  stop: AbortController;
}

/** Runs `cluster-sync node --once` in this process (same code path as the command), output kept as JSON lines. */
export async function startAgent(
  res: Resources,
  config: ConnectionConfig,
  testbox: string,
  scriptsRoot: string,
  extra: { ip?: string; etcHosts?: string; admission?: AdmissionMode; machineId?: string } = {},
): Promise<InProcessAgent> {
  const nc = res.add(await connectNats(config, `test-agent-${testbox}`), (n) => n.close());
  const lines: string[] = [];
  const stop = new AbortController();
  const code = runAgent(nc, new Subjects(config.subjectPrefix), {
    testbox,
    scriptsRoot,
    once: true,
    output: new Output((l) => lines.push(l), true),
    ip: extra.ip ?? '127.0.0.1',
    etcHosts: extra.etcHosts,
    pollMs: 50,
    signal: stop.signal,
    // Each in-process agent is its own machine, as agents on several hosts would be.
    machineId: extra.machineId ?? `${testbox}-${randomBytes(3).toString('hex')}`,
    admission: extra.admission,
  });
  res.add(stop, async (s) => {
    s.abort();
    await code.catch(() => undefined);
  });
  return { lines, code, stop };
}

/** Parsed JSON step lines of an agent. */
export function steps(a: InProcessAgent): { step: string; result: string; detail?: string }[] {
  return a.lines.map((l) => JSON.parse(l) as { type: string; step: string; result: string; detail?: string }).filter((l) => l.type === 'step');
}

/** State and failure reason of a node job in its BullMQ testbox queue. */
export async function bullJob(res: Resources, config: ConnectionConfig, testbox: string, id: string): Promise<{ state: string; failedReason?: string }> {
  const q = res.add(new Queue(testboxQueueName(testbox), { connection: res.redis(config), prefix: new Keys(config.keyPrefix).bullPrefix }), (x) => x.close());
  const job = await q.getJob(id);
  if (!job) return { state: 'missing' };
  return { state: await job.getState(), failedReason: job.failedReason };
}
