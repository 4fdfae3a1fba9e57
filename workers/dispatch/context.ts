import type { Redis } from 'ioredis';
import type { Msg, NatsConnection } from 'nats';
import type { Logger } from 'pino';
import type { ZodError } from 'zod';
import { decodeText } from '../../src/bus/connect';
import { describeZodError } from '../../src/bus/messages';
import type { Subjects } from '../../src/bus/subjects';
import type { ReplicationGuard } from '../../src/core/replication';
import type { TestboxPool } from './pool';
import type { AdmissionStore } from '../../src/admission/admission-store';

/** What the take and done handlers and the reaper share. */
export interface DispatchContext {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly connection: Redis;
  readonly log: Logger;
  readonly pool: TestboxPool;
  /** Replicas that must hold a take before the node job is handed out. */
  readonly replication: ReplicationGuard;
  /** Admission (DESIGN §9): serves takes that name a machine. */
  readonly admission?: AdmissionStore;
  readonly onHanded?: (cluster: string, job: string, machine: string, waitedMs: number) => void;
}

/** A request's body checked against `schema`: the value, or why it does not fit. */
export function parseRequest<T>(msg: Msg, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: ZodError } }): T | string {
  let body: unknown;
  try {
    body = JSON.parse(decodeText(msg.data));
  } catch {
    return 'request is not JSON';
  }
  const parsed = schema.safeParse(body);
  return parsed.success ? parsed.data : describeZodError(parsed.error);
}
