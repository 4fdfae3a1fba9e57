import { decodeText, encodeJson } from '../../src/bus/connect';
import { Subjects } from '../../src/bus/subjects';
import type { TakeReply, TakeRequest } from '../../src/bus/queue-messages';
import type { ConnectionConfig } from '../../src/core/config';
import type { Resources } from './servers';

/** A machine played by the test: one take request on testbox `testbox`'s subject, as an agent sends it (admission: `machine` named). */
export async function rawTake(res: Resources, config: ConnectionConfig, testbox: string, machine: string, extra: Partial<TakeRequest> = {}): Promise<TakeReply> {
  const nc = await res.nats(config);
  const req: TakeRequest = { v: 1, machine, session: `s-${machine}`, lease_ms: 60_000, ...extra };
  const msg = await nc.request(new Subjects(config.subjectPrefix).take(testbox), encodeJson(req), { timeout: 10_000 });
  return JSON.parse(decodeText(msg.data)) as TakeReply;
}

/** The node job id a take got, or null. */
export const takenJob = (r: TakeReply): string | null => (r.ok && r.job ? r.job.job_id : null);
