import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { colors } from '../core/terminal';
import { startWorkers } from '../../workers';
import type { WorkersHandle } from '../../workers';
import { connectNats, decodeText } from '../bus/connect';
import { Subjects } from '../bus/subjects';
import { prepareClusters } from '../cluster/prepare';
import { submitClusters } from '../cluster/submit';
import { EXIT_CODES } from '../agent/outcome';
import { connectionEnv, hasConfiguredServers, loadConnectionConfig } from '../core/config';
import type { ConnectionConfig } from '../core/config';
import { formatDuration } from '../core/duration';
import { createLogger } from '../core/logger';
import { connectRedis } from '../core/redis';
import { QueueSet } from '../queue/queues';
import { freePort, startNats, startRedis } from '../services/local-servers';
import type { LocalServer } from '../services/local-servers';
import type { ClusterEvent } from '../fold/outcome';
import { action } from './common';

/** The project folder: the nearest parent holding cluster-sync's package.json. */
function projectRoot(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'cluster-sync') return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the cluster-sync project folder above ${from}`);
  }
}

const EXIT_NAMES = Object.fromEntries(Object.entries(EXIT_CODES).map(([k, v]) => [v, k])) as Record<number, string>;

interface Agent {
  role: string;
  child: ChildProcess;
  exited: Promise<number>;
  endedAt?: number;
  lines: string[];
}

/**
 * `cluster-sync demo`: a real two-node test on this machine. Starts Redis
 * and NATS when none are configured, the workers in this process, submits
 * examples/jobs/echo.yaml, and runs one node agent per role as child
 * processes. Everything started is stopped by PID at the end or on Ctrl-C.
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a real two-node test (server daemon + client test) on this machine and print every step')
    .option('--fail', 'make the client test fail, to show the server being aborted at once')
    .action(action(async (opts: { fail?: boolean }) => runDemo(Boolean(opts.fail))));
}

async function runDemo(fail: boolean): Promise<number> {
  const t0 = Date.now();
  const say = (line: string): void => void process.stdout.write(`${colors().dim(`+${((Date.now() - t0) / 1000).toFixed(2)}s`.padStart(8))} ${line}\n`);
  const root = projectRoot();
  const cli = path.join(root, 'dist/src/cli/main.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first (npm run demo does)`);
  const servers: LocalServer[] = [];
  const agents: Agent[] = [];
  let workers: WorkersHandle | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null && a.child.pid) process.kill(a.child.pid, 'SIGTERM');
    await Promise.all(agents.map((a) => a.exited));
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await workers?.close();
    await Promise.all(servers.map((s) => s.dispose()));
  };
  const onSigint = (): void => {
    say(colors().yellow('interrupted: stopping everything the demo started'));
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  try {
    let config: ConnectionConfig;
    if (hasConfiguredServers()) {
      config = loadConnectionConfig();
      say(`using the configured servers: Redis ${config.redisUrl}, NATS ${config.natsUrl}`);
    } else {
      const [redis, nats] = await Promise.all([startRedis(), startNats()]);
      servers.push(redis, nats);
      config = loadConnectionConfig({ redisUrl: redis.url, natsUrl: nats.url });
      say(`started Redis on ${redis.url} (pid ${redis.pid}) and NATS on ${nats.url} (pid ${nats.pid})`);
    }
    workers = await startWorkers(config, { logger: createLogger('cluster-sync-worker', process.env.CS_LOG_LEVEL ?? 'warn') });
    say('workers ready: report bridge, fold, deadlines, dead-node sweep, roles_ip, dispatcher');

    const subjects = new Subjects(config.subjectPrefix);
    const nc = await connectNats(config, 'cluster-sync-demo');
    cleanups.push(() => nc.drain());
    const resolutions: (ClusterEvent & { type: 'resolution' })[] = [];
    let failedAt: number | undefined;
    nc.subscribe(subjects.allEvents, {
      callback: (err, msg) => {
        if (err) return;
        const ev = JSON.parse(decodeText(msg.data)) as ClusterEvent;
        if (ev.type === 'resolution') {
          resolutions.push(ev);
          const took = ev.took_ms === undefined ? '' : ` after ${formatDuration(ev.took_ms)}`;
          say(colors().bold(`barrier ${ev.barrier} resolved ${ev.result === 'abort' ? colors().red('abort') : colors().green(ev.result)}${took}${ev.reason ? `: ${ev.reason}` : ''}`));
        } else if (ev.type === 'report') {
          if (ev.report === 'failed' && failedAt === undefined) failedAt = Date.now();
          say(`${ev.job} (${ev.roles}) reported ${ev.report}${ev.from !== ev.state ? `: state ${ev.from || '""'} -> ${ev.state}` : ''}`);
        }
      },
    });
    await nc.flush();

    const port = await freePort();
    const jobFile = path.join(root, 'examples/jobs/echo.yaml');
    let text = readFileSync(jobFile, 'utf8').replace(/^port: \d+$/m, `port: ${port}`);
    if (fail) text = text.replace(/expect: pong/, 'expect: a-reply-that-never-comes');
    const prepared = prepareClusters(text, jobFile, { clusterDir: path.join(root, 'examples/cluster'), heartbeatIntervalMs: 1000 });
    const redis = connectRedis(config, 'cs-demo');
    cleanups.push(() => redis.quit());
    const queues = new QueueSet(redis, workers.store.keys);
    cleanups.push(() => queues.close());
    const [cluster] = await submitClusters(workers.store, queues, prepared);
    if (!cluster) throw new Error('the demo job split into no cluster');
    say(
      `submitted ${path.relative(root, jobFile)} as cluster ${cluster.cluster}: ${cluster.jobs.map((j) => `${j.job_id} (${j.node_roles}) on queue ${j.queue}`).join(', ')}; port ${port}${fail ? '; the client test is set to fail' : ''}`,
    );

    const env = { ...process.env, ...connectionEnv(config) };
    for (const j of cluster.jobs) {
      const args = [cli, 'node', '--testbox', j.testbox, '--scripts', path.join(root, 'examples/lkp'), '--once', '--ip', '127.0.0.1', '--poll-ms', '200'];
      const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const agent: Agent = { role: j.node_roles, child, lines: [], exited: new Promise((r) => child.once('exit', (code) => r(code ?? -1))) };
      void agent.exited.then(() => (agent.endedAt = Date.now()));
      for (const s of [child.stdout, child.stderr]) {
        if (s)
          createInterface({ input: s }).on('line', (l) => {
            agent.lines.push(l);
            say(`${colors().magenta(`[${agent.role} agent]`)} ${l}`);
          });
      }
      agents.push(agent);
      say(`started the ${j.node_roles} node agent (pid ${child.pid}): cluster-sync node --testbox ${j.testbox} --scripts examples/lkp --once`);
    }
    const codes = await Promise.all(agents.map((a) => a.exited));
    const view = await workers.store.readCluster(cluster.cluster);

    process.stdout.write(`\n${colors().bold('summary')} cluster ${cluster.cluster}: ${view.final === 'finish' ? colors().green('finish') : colors().red(view.final ?? 'open')}\n`);
    for (const b of view.barriers) {
      process.stdout.write(
        `  barrier ${b.barrier.padEnd(6)} ${(b.result ?? '-').padEnd(6)} ${b.at !== undefined ? `resolved ${formatDuration(b.at - view.created)} after submit` : ''}${resolutions.find((r) => r.barrier === b.barrier)?.took_ms !== undefined ? `, took ${formatDuration(resolutions.find((r) => r.barrier === b.barrier)?.took_ms ?? 0)}` : ''}\n`,
      );
    }
    agents.forEach((a, i) => process.stdout.write(`  ${a.role} agent exit ${codes[i]} (${EXIT_NAMES[codes[i] ?? -1] ?? 'error'})\n`));
    const client = agents.find((a) => a.role === 'client');
    const server = agents.find((a) => a.role === 'server');
    const passedLine = client?.lines.some((l) => /\[echo-client\] reply .* passed/.test(l)) ?? false;
    if (fail) {
      const abortedIn = failedAt !== undefined && server?.endedAt !== undefined ? ` ${formatDuration(server.endedAt - failedAt)} after the client reported failed` : '';
      const shown = codes[agents.indexOf(client as Agent)] === EXIT_CODES.test_failed && codes[agents.indexOf(server as Agent)] === EXIT_CODES.aborted;
      process.stdout.write(shown ? `  the client test failed, and the server was aborted${abortedIn} (its daemon stopped)\n` : colors().red('  the failure did not play out as expected\n'));
      return 1;
    }
    const ok = codes.every((c) => c === 0) && view.final === 'finish' && passedLine;
    process.stdout.write(ok ? colors().green(`  the client test ran and passed; total ${formatDuration(Date.now() - t0)}\n`) : colors().red('  the demo did not pass\n'));
    return ok ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await cleanup();
  }
}
