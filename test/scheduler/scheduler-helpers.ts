import type { ConnectionConfig } from '../../src/core/config';
import { startScheduler } from '../../src/scheduler/start';
import type { SchedulerHandle, StartSchedulerOptions } from '../../src/scheduler/start';
import { CLUSTER_DIR } from '../helpers/fixtures';
import type { Resources } from '../helpers/servers';

export const TOKEN = 'test-token-0123456789abcdef';

/** An in-process scheduler on a free loopback port, closed with the test's resources. */
export async function startTestScheduler(res: Resources, config: ConnectionConfig, extra: Partial<StartSchedulerOptions> = {}): Promise<SchedulerHandle> {
  const handle = await startScheduler(config, { apiToken: TOKEN, clusterDir: CLUSTER_DIR, port: 0, ...extra });
  return res.add(handle, (h) => h.close());
}

export async function post(url: string, body: string, contentType: string, token: string | null = TOKEN): Promise<{ status: number; body: unknown; text: string }> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/jobs`, { method: 'POST', headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

export async function get(url: string): Promise<{ status: number; text: string; json: () => unknown }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) as unknown };
}
