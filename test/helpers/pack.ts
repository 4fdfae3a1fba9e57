import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT, assertBuilt } from './processes';

export interface Run {
  code: number | null;
  out: string;
}

/** Runs a command to its end; its output (stdout and stderr) for the failure message. */
export function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (err) => reject(new Error(`cannot run ${cmd}: ${err.message}`)));
    child.once('close', (code) => resolve({ code, out }));
  });
}

/** Runs a command and fails with its output unless it exits 0. */
export async function runOk(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.out}`);
  return r.out;
}

/**
 * `npm pack` of the project into `dir`; the tarball's path. With
 * --ignore-scripts: `npm test` has built dist/ already, and rebuilding it
 * while other test files run the CLI from it could hand them half-written
 * files. `prepack` builds it for a real pack.
 */
export async function packTarball(dir: string): Promise<string> {
  assertBuilt();
  await runOk('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT });
  const tarball = readdirSync(dir).find((f) => /^cluster-sync-.*\.tgz$/.test(f));
  if (!tarball) throw new Error(`npm pack wrote no cluster-sync-*.tgz into ${dir}`);
  return path.join(dir, tarball);
}
