import { spawn } from 'node:child_process';
import { ROOT } from '../helpers/processes';

/**
 * A built bench script run as its own process from the repository root, in a process group of its
 * own: after `limitMs` the whole group gets SIGTERM, so the servers and processes it started stop too.
 */
export async function runBench(script: string, args: string[], env: NodeJS.ProcessEnv = process.env, limitMs = 150_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // The group is gone already.
    }
  }, limitMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
