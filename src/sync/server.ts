import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describeZodError } from '../bus/messages';
import { cacheLines } from '../client/message-client';
import type { MessageClient } from '../client/message-client';
import { ClusterAbortedError, InvalidInputError, RejectedError, TimeoutError, errorMessage } from '../core/errors';
import type { NodeJob } from '../split/node-job';
import { MAX_SYNC_LINE, SyncRequestSchema } from './protocol';
import type { SyncReply, SyncRequest } from './protocol';
import { writeSyncBin } from './bin';
import { DEFAULT_CACHE } from './command';

/**
 * The node agent's side of the MultiNode commands: a Unix socket in a
 * private directory (mode 0700) and, beside it, the `lava-*` scripts that
 * programs find first on their PATH. Each connection carries one request;
 * the answer comes when the message client has one (a wait is pushed, never
 * polled). A program that goes away cancels its wait.
 */

export interface SyncServerOptions {
  /** Default time limit of a wait, ms: the job's cluster_timeout. */
  defaultTimeoutMs: number;
  /**
   * LAVA's cache file, in the programs' environment as `CS_SYNC_CACHE` from
   * the start, created empty then if it does not exist. Default: the job's own
   * `CS_SYNC_CACHE` variable, else the agent's own
   * `CS_SYNC_CACHE`, else LAVA's `/tmp/lava_multi_node_cache.txt`.
   */
  cacheFile?: string;
  /** Connections open at once; one more is answered "too many" and closed. Default {@link MAX_SYNC_CONNECTIONS}. */
  maxConnections?: number;
  /** A connection that has not sent its request line within this is closed, ms. Default {@link SYNC_IDLE_MS}. */
  idleMs?: number;
  /** Told about every call and how it ended. */
  onCall?: (req: SyncRequest, reply: SyncReply) => void;
}

export interface SyncServer {
  /** Directory to put first on the programs' PATH. */
  readonly binDir: string;
  readonly socketPath: string;
  /** What a program's environment gets: PATH is the caller's to join. */
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

function failure(err: unknown): SyncReply {
  if (err instanceof ClusterAbortedError) return { ok: false, code: 'aborted', message: err.message };
  if (err instanceof TimeoutError) return { ok: false, code: 'timeout', message: err.message };
  if (err instanceof InvalidInputError) return { ok: false, code: 'usage', message: err.message.slice(err.source.length + 2) };
  if (err instanceof RejectedError) return { ok: false, code: 'usage', message: err.reason };
  return { ok: false, code: 'error', message: errorMessage(err) };
}

export async function answerSync(messages: MessageClient, req: SyncRequest, timeoutMs: number, signal: AbortSignal): Promise<SyncReply> {
  const t0 = Date.now();
  const opts = { timeoutMs, signal };
  try {
    switch (req.op) {
      case 'send':
        if (req.role !== undefined) return { ok: false, code: 'usage', message: 'send takes no role' };
        await messages.send(req.msg, req.data ?? {}, opts);
        return { ok: true, lines: [], waited_ms: Date.now() - t0 };
      case 'wait': {
        if (req.data !== undefined || req.role !== undefined) return { ok: false, code: 'usage', message: 'wait takes only a message ID' };
        const st = await messages.wait(req.msg, 'any', undefined, opts);
        return { ok: true, lines: cacheLines(st, false), waited_ms: Date.now() - t0 };
      }
      case 'wait-all': {
        if (req.data !== undefined) return { ok: false, code: 'usage', message: 'wait-all takes a message ID and an optional role, no data' };
        const st = await messages.wait(req.msg, 'all', req.role, opts);
        return { ok: true, lines: cacheLines(st, true), waited_ms: Date.now() - t0 };
      }
      case 'sync': {
        if (req.role !== undefined) return { ok: false, code: 'usage', message: 'sync takes no role' };
        const st = await messages.sync(req.msg, req.data ?? {}, opts);
        return { ok: true, lines: cacheLines(st, true), waited_ms: Date.now() - t0 };
      }
    }
  } catch (err) {
    return failure(err);
  }
}

/** The job's own `CS_SYNC_CACHE` (a job variable or parameter), which the programs' environment carries too. */
function jobCache(job: NodeJob): string | undefined {
  const own = job.vars.CS_SYNC_CACHE ?? job.params.CS_SYNC_CACHE;
  return typeof own === 'string' && own !== '' ? own : undefined;
}

/** Creates the cache file empty unless it exists (never through a link: `wx`). */
function createCache(file: string): void {
  try {
    writeFileSync(file, '', { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Calls (each one connection) a node's programs may have open at once. */
export const MAX_SYNC_CONNECTIONS = 64;
/** How long a connection may take to send its one request line, ms (lava-cli sends it at once). */
export const SYNC_IDLE_MS = 10_000;

export async function startSyncServer(job: NodeJob, messages: MessageClient, options: SyncServerOptions): Promise<SyncServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-sync-'));
  chmodSync(dir, 0o700);
  const socketPath = path.join(dir, 'sync.sock');
  const binDir = path.join(dir, 'bin');
  writeSyncBin(binDir, job, socketPath);
  const cacheFile = options.cacheFile ?? jobCache(job) ?? (process.env.CS_SYNC_CACHE || DEFAULT_CACHE);
  // A program may read $CS_SYNC_CACHE before its first lava-* call: it exists from the start, empty
  // when new. An existing one is left alone: LAVA's path is shared by every agent on the host.
  createCache(cacheFile);
  const maxConnections = options.maxConnections ?? MAX_SYNC_CONNECTIONS;
  const idleMs = options.idleMs ?? SYNC_IDLE_MS;
  const sockets = new Set<net.Socket>();
  /** Calls still waiting for their answer. */
  const pending = new Set<net.Socket>();

  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    if (sockets.size >= maxConnections) {
      sock.end(`${JSON.stringify({ ok: false, code: 'error', message: `the node agent has ${maxConnections} calls open already; try again when one ended` } satisfies SyncReply)}\n`);
      return;
    }
    sockets.add(sock);
    // Until its request line is in: a connection that sends nothing is closed, it holds no wait.
    sock.setTimeout(idleMs, () => sock.destroy());
    const gone = new AbortController();
    let buf = '';
    let handled = false;
    const reply = (r: SyncReply): void => {
      pending.delete(sock);
      if (!sock.destroyed) sock.end(`${JSON.stringify(r)}\n`);
    };
    sock.setEncoding('utf8');
    sock.on('close', () => {
      sockets.delete(sock);
      pending.delete(sock);
      gone.abort(new Error('the program went away'));
    });
    sock.on('data', (chunk: string) => {
      if (handled) return;
      buf += chunk;
      if (buf.length > MAX_SYNC_LINE) {
        handled = true;
        return reply({ ok: false, code: 'usage', message: `request longer than ${MAX_SYNC_LINE} bytes` });
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      handled = true;
      sock.setTimeout(0);
      let body: unknown;
      try {
        body = JSON.parse(buf.slice(0, nl));
      } catch {
        return reply({ ok: false, code: 'usage', message: 'request is not JSON' });
      }
      const parsed = SyncRequestSchema.safeParse(body);
      if (!parsed.success) return reply({ ok: false, code: 'usage', message: describeZodError(parsed.error) });
      const req = parsed.data;
      pending.add(sock);
      void answerSync(messages, req, req.timeout_ms ?? options.defaultTimeoutMs, gone.signal).then((r) => {
        options.onCall?.(req, r);
        reply(r);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);

  return {
    binDir,
    socketPath,
    env: { CS_SYNC_SOCKET: socketPath, CS_SYNC_BIN: binDir, CS_SYNC_CACHE: cacheFile },
    async close() {
      // A call still waiting hears why: the cluster aborted, or this node's job ended.
      const aborted = messages.node.aborted;
      const last: SyncReply = aborted
        ? { ok: false, code: 'aborted', message: `cluster aborted: ${aborted.reason ?? 'cluster aborted'}` }
        : { ok: false, code: 'error', message: `node job ${job.job_id} ended` };
      for (const s of pending) if (!s.destroyed) s.end(`${JSON.stringify(last)}\n`);
      pending.clear();
      for (const s of sockets) {
        s.destroySoon();
        setTimeout(() => s.destroy(), 1000).unref();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
