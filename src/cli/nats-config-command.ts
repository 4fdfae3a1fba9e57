import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { createUser, fromSeed } from 'nkeys.js';
import type { KeyPair } from 'nkeys.js';
import { authorizationBlock, labUsers, parseTestboxes } from '../bus/nats-auth';
import type { LabUser } from '../bus/nats-auth';
import { ConnectionConfigSchema } from '../core/config';
import { InvalidInputError, errorMessage } from '../core/errors';
import { action } from './common';

interface NatsConfigFlags {
  testboxes: string;
  out: string;
  subjectPrefix?: string;
}

/** What `nats-config` wrote: the server's file and each process's files. */
export interface LabFiles {
  authConf: string;
  users: { user: LabUser; seedFile: string; envFile: string; publicKey: string; reused: boolean }[];
}

/** The testboxes of `--testboxes`: a file of names when one exists at that path, else a comma-separated list. */
function readTestboxes(arg: string): string[] {
  const isFile = existsSync(arg) && statSync(arg).isFile();
  try {
    const names = parseTestboxes(isFile ? readFileSync(arg, 'utf8') : arg, isFile ? arg : '--testboxes');
    if (names.length === 0) throw new Error(isFile ? `${arg} names no testbox` : 'names no testbox');
    return names;
  } catch (err) {
    throw new InvalidInputError('--testboxes', errorMessage(err));
  }
}

/** The user's key pair: the seed already in `file` (so keys stay the same when the lab grows), or a new one. */
function keyPairFor(file: string): { kp: KeyPair; reused: boolean } {
  if (!existsSync(file)) return { kp: createUser(), reused: false };
  try {
    return { kp: fromSeed(new TextEncoder().encode(readFileSync(file, 'utf8').trim())), reused: true };
  } catch (err) {
    throw new InvalidInputError(file, `is not an nkey user seed (${errorMessage(err)}); move it away to make a new key`);
  }
}

/**
 * Writes a lab's NATS configuration into `dir`: `auth.conf` (the server's
 * authorization block) and, per user, `<user>.nk` (its seed, mode 0600) and
 * `<user>.env` (the CS_NATS_* settings the process runs with).
 */
export function writeLabConfig(dir: string, testboxes: readonly string[], subjectPrefix: string): LabFiles {
  mkdirSync(dir, { recursive: true });
  const abs = path.resolve(dir);
  const users = labUsers(subjectPrefix, testboxes).map((user) => {
    const seedFile = path.join(abs, `${user.name}.nk`);
    const envFile = path.join(abs, `${user.name}.env`);
    const { kp, reused } = keyPairFor(seedFile);
    if (!reused) writeFileSync(seedFile, `${new TextDecoder().decode(kp.getSeed())}\n`, { mode: 0o600 });
    chmodSync(seedFile, 0o600);
    const env = [`CS_NATS_CREDS=${seedFile}`, `CS_NATS_INBOX_PREFIX=${user.inboxPrefix}`, `CS_SUBJECT_PREFIX=${subjectPrefix}`];
    writeFileSync(envFile, `${env.join('\n')}\n`);
    return { user, seedFile, envFile, publicKey: kp.getPublicKey(), reused };
  });
  const authConf = path.join(abs, 'auth.conf');
  writeFileSync(authConf, authorizationBlock(users, subjectPrefix));
  return { authConf, users };
}

const COMMANDS: Record<LabUser['role'], (u: LabUser) => string> = {
  worker: () => 'cluster-sync worker',
  scheduler: () => 'cluster-sync scheduler ...',
  ops: () => 'cluster-sync watch',
  node: (u) => `cluster-sync node --testbox ${u.testbox ?? ''} --scripts DIR`,
};

export function registerNatsConfig(program: Command): void {
  program
    .command('nats-config')
    .description("write a lab's NATS authorization (one nkey user per testbox, plus worker, scheduler and ops) and each process's credentials")
    .requiredOption('--testboxes <file|list>', 'the testboxes: a file with one name per line (# comments), or a comma-separated list')
    .requiredOption('--out <dir>', 'folder to write auth.conf, <user>.nk seeds and <user>.env settings into (existing seeds are kept)')
    .option('--subject-prefix <prefix>', 'NATS subject prefix (env CS_SUBJECT_PREFIX, default cs)')
    .action(
      action(async (opts: NatsConfigFlags) => {
        const prefix = ConnectionConfigSchema.shape.subjectPrefix.safeParse(opts.subjectPrefix ?? process.env.CS_SUBJECT_PREFIX ?? undefined);
        if (!prefix.success) throw new InvalidInputError('--subject-prefix', prefix.error.issues[0]?.message ?? 'invalid');
        const files = writeLabConfig(opts.out, readTestboxes(opts.testboxes), prefix.data);
        const out = [
          `wrote ${files.authConf} (${files.users.length} users, subject prefix ${prefix.data})`,
          `  start the server with it:  nats-server -c ${files.authConf}   (or "include" it in your server configuration)`,
          '',
          'each process runs with its own settings (its seed file stays on its machine, mode 0600):',
        ];
        for (const f of files.users) {
          out.push(
            `  ${f.user.name.padEnd(Math.max(...files.users.map((u) => u.user.name.length)))} set -a; . ${f.envFile}; set +a; ${COMMANDS[f.user.role](f.user)}${f.reused ? '   (key kept)' : ''}`,
          );
        }
        process.stdout.write(`${out.join('\n')}\n`);
        await Promise.resolve();
      }),
    );
}
