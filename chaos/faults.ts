import { errorMessage } from '../src/core/errors';
import { API_TOKEN, sleep } from './env';
import type { ChaosEnv } from './env';
import type { History } from './history';
import type { RecordingClient } from './nodes';
import type { FaultPlan } from './plan';
import { TIMEOUT_MS, countFault } from './round';
import type { RoundContext } from './round';

/** The faults of a round (chaos/plan.ts draws them): each injected at its time, logged as fault and healed. */

export async function inject(f: FaultPlan, ctx: RoundContext, history: History, clients: RecordingClient[]): Promise<void> {
  const { env } = ctx;
  const detail = `target ${f.target}`;
  switch (f.kind) {
    case 'client-pause': {
      const c = clients[f.target % Math.max(1, clients.length)];
      if (!c) return;
      history.add({ kind: 'pause', cluster: c.id.cluster, job: c.id.job, detail: `${f.durationMs} ms` });
      c.pausedUntil = Date.now() + f.durationMs;
      break;
    }
    case 'scheduler-kill-submit':
      history.add({ kind: 'fault', what: f.kind, detail });
      await killMidSubmit(env, f.target % 40, history);
      history.add({ kind: 'healed', what: f.kind, detail });
      break;
    default:
      history.add({ kind: 'fault', what: f.kind, detail });
      try {
        if (f.kind === 'worker-kill') await env.killWorker(f.target);
        else if (f.kind === 'worker-stop') await env.pauseWorker(f.target, f.durationMs);
        else if (f.kind === 'nats-restart') await env.restartNats();
        else if (f.kind === 'redis-restart') await env.restartRedis();
        else if (f.kind === 'redis-oom') await env.redisOutOfMemory(f.durationMs);
      } catch (err) {
        history.add({ kind: 'note', detail: `${f.kind} failed: ${errorMessage(err)}` });
      }
      history.add({ kind: 'healed', what: f.kind, detail });
  }
  countFault(ctx.result, f.kind);
}

/** POST a two-node job to the scheduler and SIGKILL it `afterMs` later; start it again. */
async function killMidSubmit(env: ChaosEnv, afterMs: number, history: History): Promise<void> {
  const body = JSON.stringify({
    job: `suite: chaos\ncluster: cs-chaos\ncluster_timeout: ${TIMEOUT_MS / 1000}\nif role server:\n  srv:\nif role client:\n  cli:\n`,
    cluster_spec: 'nodes:\n  chaos-sched--1: { roles: [server] }\n  chaos-sched--2: { roles: [client] }\n',
  });
  // Bounded: one run under jest never settled this fetch after the kill (no connection left open), and the round waited for ever.
  const abort = new AbortController();
  const giveUp = setTimeout(() => abort.abort(new Error('no answer within 15 s')), 15_000);
  const posting = fetch(`${env.schedulerUrl}/jobs`, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${API_TOKEN}` }, signal: abort.signal })
    .then(async (r) => history.add({ kind: 'note', detail: `submit to the scheduler answered ${r.status}: ${(await r.text()).slice(0, 120)}` }))
    .catch((err: unknown) => history.add({ kind: 'note', detail: `submit to the scheduler failed: ${errorMessage(err)}` }));
  await sleep(afterMs);
  await env.killScheduler();
  let stuck: NodeJS.Timeout | undefined;
  await Promise.race([posting, new Promise<void>((resolve) => (stuck = setTimeout(() => resolve(void history.add({ kind: 'note', detail: 'submit to the scheduler never settled, even aborted: left behind' })), 20_000)))]);
  clearTimeout(stuck);
  clearTimeout(giveUp);
}
