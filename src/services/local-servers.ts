import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MissingBinaryError, TimeoutError } from '../core/errors';

/**
 * Throw-away Redis and NATS servers on free loopback ports, for tests, the
 * demo and `cluster-sync services`. Each lives in its own temporary folder
 * and is stopped by its PID.
 */

const INSTALL_HINT = 'install it with: apt-get install -y redis-server nats-server';

export function findBinary(name: string, candidates: string[] = [`/usr/bin/${name}`, `/usr/sbin/${name}`, `/usr/local/bin/${name}`]): string {
  const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : '';
  if (found) return found;
  for (const c of candidates) {
    if (spawnSync('test', ['-x', c]).status === 0) return c;
  }
  throw new MissingBinaryError(name, INSTALL_HINT);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before it listened on port ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new TimeoutError(`${what} did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface LocalServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  /** Stops the server (SIGTERM, then SIGKILL), keeping its folder. */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder (data kept where it persists). */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts `bin` on a free (or the given) loopback port in its own folder; `argsFor` may write a config file there. */
export function launch(what: string, bin: string, argsFor: (port: number, dir: string) => string[], scheme: string) {
  return async (options: { port?: number; dir?: string } = {}): Promise<LocalServer> => {
    const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), `cs-${what}-`));
    let port = options.port ?? (await freePort());
    let child: ChildProcess | undefined;
    const start = async (attempts: number): Promise<void> => {
      for (let i = 0; ; i++) {
        child = spawn(bin, argsFor(port, dir), { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
        let stderr = '';
        child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
        try {
          await waitForPort(port, child, what);
          return;
        } catch (err) {
          await stopChild(child);
          if (i + 1 >= attempts) throw new Error(`${what} failed to start on 127.0.0.1:${port}: ${(err as Error).message}\n${stderr}`);
          if (options.port === undefined) port = await freePort();
        }
      }
    };
    await start(options.port === undefined ? 3 : 1);
    const server: LocalServer = {
      get url() {
        return `${scheme}://127.0.0.1:${port}`;
      },
      get port() {
        return port;
      },
      get pid() {
        return child?.pid ?? -1;
      },
      dir,
      async stop() {
        if (child) await stopChild(child);
      },
      async restart() {
        if (child) await stopChild(child);
        await start(5);
      },
      async dispose() {
        if (child) await stopChild(child);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return server;
  };
}

export interface RedisServerOptions {
  port?: number;
  dir?: string;
  /** Append-only file: `no` (default, nothing kept), `everysec` or `always`. */
  appendfsync?: 'no' | 'everysec' | 'always';
  /** More `redis-server` arguments (replication settings of an HA set). */
  extraArgs?: string[];
}

export async function startRedis(options: RedisServerOptions = {}): Promise<LocalServer> {
  const bin = findBinary('redis-server');
  const aof = options.appendfsync ?? 'no';
  const args = (port: number, dir: string) => [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--appendonly',
    aof === 'no' ? 'no' : 'yes',
    ...(aof === 'no' ? [] : ['--appendfsync', aof]),
    '--logfile',
    path.join(dir, 'redis.log'),
    '--protected-mode',
    'yes',
    ...(options.extraArgs ?? []),
  ];
  return launch('redis', bin, args, 'redis')({ port: options.port, dir: options.dir });
}

export interface NatsServerOptions {
  port?: number;
  dir?: string;
  /** Path of a NATS server configuration file (users, permissions). */
  config?: string;
  /** Text of a NATS server configuration, written to `nats.conf` in the server's folder (a cluster's routes). */
  configText?: string;
  /** Serve nats-server's HTTP monitoring (/connz, /varz) on a free loopback port. Default off. */
  monitor?: boolean;
}

export interface NatsServer extends LocalServer {
  /** `http://127.0.0.1:PORT` of the monitoring endpoints, when `monitor` was asked for. */
  readonly monitorUrl: string | undefined;
}

function writeText(file: string, text: string): string {
  writeFileSync(file, text);
  return file;
}

export async function startNats(options: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = findBinary('nats-server');
  const monitorPort = options.monitor ? await freePort() : undefined;
  const args = (port: number, dir: string) => [
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '-l',
    path.join(dir, 'nats.log'),
    ...(monitorPort === undefined ? [] : ['-m', String(monitorPort)]),
    ...(options.config ? ['-c', options.config] : []),
    ...(options.configText === undefined ? [] : ['-c', writeText(path.join(dir, 'nats.conf'), options.configText)]),
  ];
  const server = await launch('nats', bin, args, 'nats')({ port: options.port, dir: options.dir });
  return Object.assign(server, { monitorUrl: monitorPort === undefined ? undefined : `http://127.0.0.1:${monitorPort}` });
}
