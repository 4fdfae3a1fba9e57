import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionConfig } from '../../src/core/config';
import { startWorkers } from '../../workers';
import { CliProcess, envFor } from '../helpers/processes';
import { Resources, startTestServers } from '../helpers/servers';
import type { TestServers } from '../helpers/servers';

/**
 * Real shell nodes (lkp-node.sh: Compass-CI's lib/job.sh; lkp-node-intel.sh:
 * intel's) against `cluster-sync scheduler` started from the built command
 * line, with `cluster-sync submit --watch` submitting and following each
 * cluster. Each test file gets its own servers, workers, scheduler and folder.
 */
export const TOKEN = 'shell-test-token-0123456789';

export interface ShellNode {
  host: string;
  stdout: string;
  /** One `answer STATE FIRST-LINE` per request, and any shell error. */
  stderr: string;
  tmp: string;
  resultRoot: string;
  etcHosts: string;
  exitCode: () => number | null;
  exited: Promise<number | null>;
}

export interface SubmittedNode {
  job: string;
  roles: string;
  host: string;
}

export class ShellLab {
  servers!: TestServers;
  config!: ConnectionConfig;
  port = '';
  dir = '';
  readonly res = new Resources();

  /** Starts servers, workers and the scheduler (`--long-poll 1`, so a wait answers `retry` each second). */
  async start(specs: Record<string, string>, jobs: Record<string, string>): Promise<void> {
    this.servers = await startTestServers();
    this.config = this.servers.config();
    this.res.add(await startWorkers(this.config), (w) => w.close());
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'cs-lkp-shell-'));
    for (const [name, text] of Object.entries(specs)) writeFileSync(path.join(this.dir, name), text);
    for (const [name, text] of Object.entries(jobs)) writeFileSync(path.join(this.dir, name), text);
    this.program('ok', 'exit 0');
    this.program('fail', 'echo "the test failed" >&2; exit 1');
    // waits for release(), or for the test's folder to go away
    this.program('wait-release', `while [ ! -e "$RELEASE" ] && [ -d "${this.dir}" ]; do sleep 0.05; done`);
    const scheduler = new CliProcess(['scheduler', '--port', '0', '--cluster-dir', this.dir, '--long-poll', '1'], envFor(this.config, { CS_API_TOKEN: TOKEN }));
    this.res.add(scheduler, (s) => s.stop());
    const m = await scheduler.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    this.port = m[1] as string;
  }

  async stop(): Promise<void> {
    this.release();
    await this.res.closeAll();
    await this.servers.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A program file the nodes can run (lkp's daemon/ or tests/ script). */
  program(name: string, body: string): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  }

  /** `cluster-sync submit JOB --watch`, started; resolves with its node jobs once all `count` are printed. */
  async submitWatching(jobFile: string, count: number): Promise<{ watch: CliProcess; cluster: string; nodes: SubmittedNode[] }> {
    const watch = this.res.add(new CliProcess(['submit', path.join(this.dir, jobFile), '--watch', '--server', `http://127.0.0.1:${this.port}`], envFor(this.config, { CS_API_TOKEN: TOKEN })), (w) =>
      w.stop(),
    );
    const lines = `^cluster (\\S+) .*${'\\n.*host \\S+'.repeat(count)}$`;
    const m = await watch.waitFor(new RegExp(lines, 'm'));
    const nodes = [...(m[0] as string).matchAll(/^ {2}(\S+)\s+(.+?)\s+queue \S+\s+host (\S+)$/gm)].map((x) => ({ job: x[1] as string, roles: x[2] as string, host: x[3] as string }));
    expect(nodes).toHaveLength(count);
    return { watch, cluster: m[1] as string, nodes };
  }

  /** Runs one shell node of `script` for `node`; `life` daemon or test; `program` a file made by program(). */
  runNode(script: string, node: { job?: string; host: string; roles: string }, spec: string, life: 'daemon' | 'test', program: string, extra: Record<string, string> = {}): ShellNode {
    const tmp = mkdtempSync(path.join(this.dir, `tmp-${node.host}-`));
    const resultRoot = path.join(tmp, 'result');
    const etcHosts = path.join(tmp, 'etc-hosts');
    writeFileSync(etcHosts, '127.0.0.1 localhost\n');
    const n = Number(/(\d+)$/.exec(node.host)?.[1] ?? 0);
    rmSync(resultRoot, { force: true, recursive: true });
    const child = spawn('sh', [path.join(__dirname, script)], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        LKP_SERVER: '127.0.0.1',
        LKP_CGI_PORT: this.port,
        LKP_USER: 'lkp',
        ...(node.job ? { id: node.job } : {}),
        cluster: spec,
        HOSTNAME: node.host,
        node_roles: node.roles,
        direct_macs: '',
        direct_ips: '',
        NODE_IP: `10.9.0.${n}`,
        NODE_LIFE: life,
        NODE_PROGRAM: path.join(this.dir, program),
        RELEASE: path.join(this.dir, 'release'),
        TMP: tmp,
        RESULT_ROOT: tmp,
        ETC_HOSTS: etcHosts,
        ...extra,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const shell: ShellNode = {
      host: node.host,
      stdout: '',
      stderr: '',
      tmp,
      resultRoot: tmp,
      etcHosts,
      exitCode: () => child.exitCode,
      exited: new Promise((r) => child.once('close', (code) => r(code))),
    };
    child.stdout.on('data', (d: Buffer) => (shell.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (shell.stderr += d.toString()));
    this.res.add(child, async (c) => {
      if (c.exitCode === null) c.kill('SIGKILL');
    });
    return shell;
  }

  /** Creates a node's RELEASE file (default: the one every node waits on unless given its own). */
  release(file = path.join(this.dir, 'release')): void {
    writeFileSync(file, '');
  }

  async clusterStates(cluster: string): Promise<Record<string, string>> {
    const view = (await (await fetch(`http://127.0.0.1:${this.port}/clusters/${cluster}`)).json()) as { nodes: { job: string; state: string }[] };
    return Object.fromEntries(view.nodes.map((n) => [n.job, n.state]));
  }
}

/** The `answer STATE WORD` lines a node logged for `state`, in order. */
export function answers(node: ShellNode, state: string): string[] {
  return [...node.stderr.matchAll(new RegExp(`^answer ${state} (.*)$`, 'gm'))].map((m) => m[1] as string);
}

export function lastState(node: ShellNode): string {
  try {
    return readFileSync(path.join(node.resultRoot, 'last_state'), 'utf8');
  } catch {
    return '';
  }
}
