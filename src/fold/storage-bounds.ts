import { MAX_MSG_IDS, MAX_MSG_NODE_BYTES } from '../bus/messages';
import { ID_MAX } from '../core/ids';

/*
 * The worst case of what named messages (LAVA MultiNode) store in Redis, in
 * bytes of stored JSON, as docs/bounds.md states it and
 * test/faults/storage-bounds.test.ts checks it. Every term is bounded by what
 * was sent: data is counted as stored (escapes included, control characters
 * refused), and a send's or wait's dedupe record holds the report's own ids,
 * never the ID's state.
 */

/** Data of all senders of one ID together, stored bytes (messages.lua MSG_MAX_ID_BYTES). */
export const MAX_MSG_ID_BYTES = 262_144;
/** Keys of one node's data for one ID (MsgDataSchema). */
export const MAX_MSG_KEYS = 256;
/** A role name (ReportSchema `role`). */
export const MAX_ROLE_BYTES = 128;
/** A number as cjson writes it (14 significant digits), quoted names and punctuation around it. */
const NUMBER = 14;

export interface IdLengths {
  /** Longest node job id of the cluster, bytes. Default {@link ID_MAX}. */
  job?: number;
  /** Longest role a wait-all names, bytes. Default {@link MAX_ROLE_BYTES}. */
  role?: number;
  /** Longest message id, bytes. Default {@link ID_MAX}. */
  msg?: number;
}

/**
 * One message ID's value in `cs/cluster/<cid>/messages`, at most, bytes:
 * `{seq, created, bytes, order, senders, waits}` with every node a sender
 * (its data, its name in `order` and `senders`) and a waiter (its name, mode,
 * role, times), the data of all of them at most {@link MAX_MSG_ID_BYTES}.
 */
export function messageIdBytes(nodes: number, ids: IdLengths = {}): number {
  const job = ids.job ?? ID_MAX;
  const role = ids.role ?? MAX_ROLE_BYTES;
  const fixed = 64 + 3 * NUMBER;
  // "job", in order; "job":{"data":{..},"at":N,"last":N,"bytes":N}, in senders; "job":{"mode":"all","role":"R","since":N,"released":N}, in waits.
  const perNode = job + 3 + (job + 40 + 3 * NUMBER) + (job + role + 40 + 2 * NUMBER);
  // Each key=value line is counted as stored + 2; as JSON it is "k":"v", (+4 more); the braces.
  const quoting = MAX_MSG_KEYS * 4 + 2;
  const data = Math.min(nodes * MAX_MSG_NODE_BYTES, MAX_MSG_ID_BYTES) + nodes * quoting;
  return fixed + nodes * perNode + data;
}

/** The cluster's messages hash, at most, bytes of fields and values. */
export function messagesHashBytes(nodes: number, ids: IdLengths = {}): number {
  return MAX_MSG_IDS * ((ids.msg ?? ID_MAX) + messageIdBytes(nodes, ids));
}

/**
 * One send's or wait's record in `cs/cluster/<cid>/reports`, at most, bytes
 * of field and value: `{ok, dup, changed, state, resolutions, events,
 * message: {msg, by: {job, report, op}, error?}}`, the report id as field
 * and in `by`, a refusal's reason (which names at most the cluster, a job or
 * role and the ID).
 */
export function messageRecordBytes(ids: IdLengths = {}): number {
  const job = ids.job ?? ID_MAX;
  const msg = ids.msg ?? ID_MAX;
  const reportId = job + 22; // NodeClient.newReportId: <job>.<kind>.<12 hex>
  const reason = 120 + 2 * Math.max(job, msg, ids.role ?? MAX_ROLE_BYTES);
  return 2 * reportId + 160 + msg + job + reason;
}

/**
 * What Redis takes for a hash of `fields` fields holding `bytes` bytes of
 * fields and values, at most: jemalloc rounds an allocation up by at most a
 * quarter, and each field costs a dict entry and two string headers (under
 * 64 bytes); the key itself and the table, under 1 KiB plus 16 bytes a field.
 */
export function redisHashBytes(fields: number, bytes: number): number {
  return Math.ceil(1.25 * bytes) + fields * 80 + 1024;
}
