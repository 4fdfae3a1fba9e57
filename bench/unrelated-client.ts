import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { get } from './waiter-stack';

/**
 * bench:waiters' unrelated cluster: one node's legacy `write_state`s (a new
 * address each, so a fold each), one at a time with a pause between, in a
 * worker thread of its own. In the bench's main thread they queued behind
 * the bench's own work (opening N connections took its event loop 2 s on a
 * loaded machine), which the scheduler was then blamed for.
 */

const LEGACY = '/~lkp/cgi-bin/lkp-cluster-sync';

interface Job {
  url: string;
  job: string;
  /** Stop after this many requests. Default: until told to stop. */
  max?: number;
  gapMs: number;
}

/** One unrelated request: when it was sent (epoch ms, comparable across threads) and how long its answer took (ms). */
export interface UnrelatedSample {
  sentAt: number;
  ms: number;
}

/** The requests sent until `stop()` (or `max`); rejects if one is not answered 200. */
export function unrelatedRequests(url: string, job: string, gapMs: number, max?: number): { done: Promise<UnrelatedSample[]>; stop: () => void } {
  const worker = new Worker(__filename, { workerData: { url, job, max, gapMs } satisfies Job });
  const done = new Promise<UnrelatedSample[]>((resolve, reject) => {
    worker.once('message', (m: { samples?: UnrelatedSample[]; error?: string }) => {
      // Its answer is all it has to give: end it, whatever it still holds.
      void worker.terminate();
      if (m.error) reject(new Error(m.error));
      else resolve(m.samples ?? []);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`unrelated client exited (${code}) before it answered`)));
  });
  return { done, stop: () => worker.postMessage('stop') };
}

async function run(j: Job): Promise<UnrelatedSample[]> {
  let stopped = false;
  parentPort?.once('message', () => (stopped = true));
  const out: UnrelatedSample[] = [];
  for (let i = 0; !stopped && out.length < (j.max ?? Infinity); i++) {
    const sentAt = Date.now();
    const t = performance.now();
    const r = await get(`${j.url}${LEGACY}?job_id=${j.job}&state=write_state&ip=10.9.${i % 2}.1`);
    if (r.status !== 200) throw new Error(`unrelated write_state: HTTP ${r.status} ${r.body}`);
    out.push({ sentAt, ms: r.at - t });
    await sleep(j.gapMs);
  }
  return out;
}

if (!isMainThread) {
  run(workerData as Job).then(
    (samples) => parentPort?.postMessage({ samples }),
    (err: unknown) => parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) }),
  );
}
