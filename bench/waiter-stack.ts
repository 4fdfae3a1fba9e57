import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionConfig } from '../src/core/config';
import { cliEnv } from './worker-process';

/**
 * One build's worker and scheduler processes, spawned from its CLI
 * (`dist/src/cli/main.js`), so two builds run side by side on the same
 * servers: `bench/waiters.ts` points one at main's build (CS_BENCH_BEFORE_CLI)
 * and one at this build's.
 */
export const TOKEN = 'bench-waiters-token-0123456789';

export interface Proc {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

function start(cli: string, args: string[], config: ConnectionConfig, ready: RegExp, logLevel: string, nodeArgs: string[] = []): Promise<Proc> {
  const env = { ...cliEnv(config, logLevel), CS_API_TOKEN: TOKEN };
  const child = spawn(process.execPath, [...nodeArgs, cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-16_384);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      void stop();
      reject(new Error(`${args[0]} not ready within 60 s:\n${out}`));
    }, 60_000);
    const check = (): void => {
      if (ready.test(out)) {
        clearTimeout(deadline);
        resolve({ child, output: () => out, stop });
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`${args[0]} exited (${code}) before it was ready:\n${out}`));
    });
  });
}

/**
 * `schedulerNodeArgs`: arguments for node itself in the scheduler's process,
 * e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (the profile is written when it
 * exits on SIGTERM). Default none.
 */
export async function startStack(cli: string, config: ConnectionConfig, port: number, schedulerNodeArgs: string[] = []): Promise<{ worker: Proc; scheduler: Proc; url: string }> {
  // The worker says it is ready at info; the scheduler on stderr, and logs each request at info (not measured here).
  const worker = await start(cli, ['worker'], config, /workers ready/, 'info');
  try {
    const scheduler = await start(cli, ['scheduler', '--port', String(port), '--long-poll', '1700'], config, /listening on/, 'warn', schedulerNodeArgs);
    return { worker, scheduler, url: `http://127.0.0.1:${port}` };
  } catch (err) {
    await worker.stop();
    throw err;
  }
}

export interface Answer {
  status: number;
  body: string;
  /** When the answer was complete (performance.now()). */
  at: number;
}

/** One GET on its own connection (no agent: each held request is its own socket, as lkp's wget is). */
export function get(url: string, onConnect?: () => void): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, at: performance.now() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (onConnect) req.on('socket', (s) => s.once('connect', onConnect));
  });
}

/** Submits a two-node cluster; returns its node job ids. */
export async function submitPair(url: string, name: string): Promise<{ cluster: string; a: string; b: string }> {
  const job = `suite: ${name}\nif role server:\n  srv:\nif role client:\n  cli:\n`;
  const spec = `nodes:\n  ${name}--1: { roles: [server] }\n  ${name}--2: { roles: [client] }\n`;
  const send = (): Promise<Response> =>
    fetch(`${url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ job, cluster_spec: spec }) });
  let r = await send();
  // 503: the scheduler listens before its Redis connection is ready (on a loaded machine that takes a while); it says to try again.
  for (let i = 0; r.status === 503 && i < 30; i++) {
    await sleep(1000);
    r = await send();
  }
  const body = (await r.json()) as { job_id: string; cluster: string }[];
  if (r.status !== 200 || body.length !== 2) throw new Error(`submit failed: HTTP ${r.status} ${JSON.stringify(body)}`);
  return { cluster: body[0]!.cluster, a: body[0]!.job_id, b: body[1]!.job_id };
}

/** The NATS connection named `name` on the monitored server: messages the server delivered to it so far. */
export async function deliveredTo(monitorUrl: string, name: string): Promise<number> {
  const connz = (await (await fetch(`${monitorUrl}/connz?limit=4096`)).json()) as { connections: { name?: string; out_msgs: number }[] };
  return connz.connections.filter((c) => c.name === name).reduce((n, c) => n + c.out_msgs, 0);
}
