import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ConnectionConfig } from '../../src/core/config';
import type { LocalServer } from '../../src/services/local-servers';
import { CliProcess } from './processes';
import { eventually } from './servers';

/**
 * A lab's NATS configuration written by the real `cluster-sync nats-config`,
 * and the settings each process runs with, read from the `.env` files it
 * wrote, as an operator's shell would.
 */
export interface Lab {
  dir: string;
  authConf: string;
  /** The CS_NATS_* settings of a user (`worker`, `scheduler`, `ops`, `node-<testbox>`). */
  env(user: string): Record<string, string>;
  /** A connection config for `user` on top of `base`. */
  config(base: ConnectionConfig, user: string): ConnectionConfig;
}

export async function writeLab(dir: string, testboxes: string[], subjectPrefix = 'cs'): Promise<Lab> {
  const p = new CliProcess(['nats-config', '--testboxes', testboxes.join(','), '--out', dir, '--subject-prefix', subjectPrefix], { ...process.env });
  const code = await p.exited;
  if (code !== 0) throw new Error(`cluster-sync nats-config exited ${code}: ${p.stderr}`);
  const env = (user: string): Record<string, string> => {
    const text = readFileSync(path.join(dir, `${user}.env`), 'utf8');
    return Object.fromEntries(
      text
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  };
  return {
    dir,
    authConf: path.join(dir, 'auth.conf'),
    env,
    config(base, user) {
      const e = env(user);
      return { ...base, subjectPrefix: e.CS_SUBJECT_PREFIX ?? base.subjectPrefix, natsCreds: e.CS_NATS_CREDS, natsInboxPrefix: e.CS_NATS_INBOX_PREFIX };
    },
  };
}

/** The nats-server log line that matches `pattern` (the server writes it a moment after it refused). */
export async function serverLogLine(nats: LocalServer, pattern: RegExp): Promise<string> {
  const file = path.join(nats.dir, 'nats.log');
  return eventually(() => {
    const lines = readFileSync(file, 'utf8').split('\n');
    return lines.find((l) => pattern.test(l))?.replace(/^\[\d+\] \S+ \S+ /, '');
  }, `a nats-server log line matching ${pattern}`);
}

/** `Subject "x"` in a violation line, escaped for a RegExp. */
export function violationOf(kind: 'Publish' | 'Subscription', subject: string): RegExp {
  return new RegExp(`${kind} Violation .*Subject "${subject.replace(/[.*+?^${}()|[\]\\>]/g, '\\$&')}"`);
}
