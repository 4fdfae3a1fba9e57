import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { ID_RULE, isId } from '../core/ids';
import { parseDuration } from '../core/duration';
import { errorMessage } from '../core/errors';
import { SyncFailure } from './wire';
import type { SyncOp, SyncReply, SyncRequest } from './wire';

/**
 * The program's side of `lava-send ID [key=value ...]`, `lava-wait ID`,
 * `lava-wait-all ID [ROLE]`, `lava-sync ID` (and `cluster-sync send|wait|
 * wait-all|sync`): checks the arguments, asks the node agent over its
 * socket, writes the cache file in LAVA's formats, and returns the exit code:
 * 0 done, 2 bad usage, 3 the cluster aborted, 4 timed out, 5 no agent or
 * another error. Every failure says why on stderr.
 */

/** LAVA's cache file. */
export const DEFAULT_CACHE = '/tmp/lava_multi_node_cache.txt';

const USAGE: Record<SyncOp, string> = {
  send: 'lava-send [--timeout D] ID [key=value ...]',
  wait: 'lava-wait [--timeout D] ID',
  'wait-all': 'lava-wait-all [--timeout D] ID [ROLE]',
  sync: 'lava-sync [--timeout D] ID',
};

class UsageError extends Error {}

function name(value: string, what: string): string {
  if (!isId(value, 'message id')) throw new UsageError(`${what} ${JSON.stringify(value)}: ${ID_RULE} only`);
  return value;
}

/** Parses the arguments of one command into a request. */
export function parseSyncArgs(op: SyncOp, argv: readonly string[]): SyncRequest {
  const rest: string[] = [];
  let timeoutMs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--timeout' || a.startsWith('--timeout=')) {
      const v = a === '--timeout' ? argv[++i] : a.slice('--timeout='.length);
      if (v === undefined) throw new UsageError('--timeout needs a duration, e.g. 30s or 10m');
      try {
        timeoutMs = parseDuration(v, '--timeout', 'command line');
      } catch (err) {
        throw new UsageError(errorMessage(err));
      }
    } else if (a === '--help' || a === '-h') {
      throw new UsageError(`usage: ${USAGE[op]}`);
    } else rest.push(a);
  }
  const [id, ...more] = rest;
  if (id === undefined) throw new UsageError(`a message ID is missing; usage: ${USAGE[op]}`);
  const req: SyncRequest = { v: 1, op, msg: name(id, 'message ID') };
  if (timeoutMs !== undefined) req.timeout_ms = timeoutMs;
  if (op === 'send') {
    const data: Record<string, string> = {};
    for (const kv of more) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new UsageError(`${JSON.stringify(kv)} is not key=value; usage: ${USAGE[op]}`);
      const value = kv.slice(eq + 1);
      if (/[\0\n\r]/.test(value)) throw new UsageError(`the value of ${kv.slice(0, eq)} holds a newline or NUL`);
      data[name(kv.slice(0, eq), 'key')] = value;
    }
    if (more.length > 0) req.data = data;
  } else if (op === 'wait-all') {
    if (more.length > 1) throw new UsageError(`too many arguments; usage: ${USAGE[op]}`);
    if (more[0] !== undefined) req.role = more[0];
  } else if (more.length > 0) {
    throw new UsageError(`too many arguments; usage: ${USAGE[op]}`);
  }
  return req;
}

function ask(socketPath: string, req: SyncRequest): Promise<SyncReply> {
  return new Promise((resolve) => {
    const sock = net.connect(socketPath);
    let buf = '';
    let done = false;
    const finish = (r: SyncReply): void => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(r);
    };
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(JSON.parse(buf.slice(0, nl)) as SyncReply);
      } catch {
        finish({ ok: false, code: 'error', message: 'the node agent answered something that is not JSON' });
      }
    });
    sock.on('error', (err) => finish({ ok: false, code: 'error', message: `cannot reach the node agent at ${socketPath}: ${err.message}` }));
    sock.on('close', () => finish({ ok: false, code: 'error', message: 'the node agent closed the connection without an answer (did its node job end?)' }));
  });
}

/**
 * Writes the cache file whole (a reader never sees half of it): a new file
 * beside it (`wx`: never through a link someone left there), renamed over it.
 */
export function writeCache(file: string, lines: string[]): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, lines.length > 0 ? `${lines.join('\n')}\n` : '', { flag: 'wx', mode: 0o644 });
  renameSync(tmp, file);
}

export async function runSyncCommand(op: SyncOp, argv: readonly string[], env: NodeJS.ProcessEnv, stderr: (line: string) => void): Promise<number> {
  const cmd = `lava-${op}`;
  let req: SyncRequest;
  try {
    req = parseSyncArgs(op, argv);
  } catch (err) {
    stderr(`${cmd}: ${errorMessage(err)}`);
    return SyncFailure.usage;
  }
  const socketPath = env.CS_SYNC_SOCKET;
  if (!socketPath) {
    stderr(`${cmd}: CS_SYNC_SOCKET is not set: this command works inside programs that "cluster-sync node" runs`);
    return SyncFailure.error;
  }
  const reply = await ask(socketPath, req);
  if (!reply.ok) {
    stderr(`${cmd} ${req.msg}: ${reply.message}`);
    return SyncFailure[reply.code] ?? SyncFailure.error;
  }
  const cache = env.CS_SYNC_CACHE || DEFAULT_CACHE;
  try {
    // As LAVA: every call replaces the cache; a send leaves it empty.
    writeCache(cache, reply.lines);
  } catch (err) {
    stderr(`${cmd} ${req.msg}: cannot write the cache file ${cache}: ${errorMessage(err)}`);
    return SyncFailure.error;
  }
  return 0;
}
