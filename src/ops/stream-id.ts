/**
 * Redis stream ids (`<ms>-<seq>`). They order events: the fold appends every
 * event to the global stream first, so ids grow across all clusters.
 */
export interface StreamId {
  ms: number;
  seq: number;
}

const ID = /^(\d{1,16})-(\d{1,16})$/;

/** A stream id's parts; undefined when it is none (or past what Redis and a JavaScript number hold exactly). */
export function parseStreamId(id: string): StreamId | undefined {
  const m = ID.exec(id);
  if (!m) return undefined;
  const ms = Number(m[1]);
  const seq = Number(m[2]);
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq)) return undefined;
  return { ms, seq };
}

/** Negative when `a` is older than `b`, 0 when equal, positive when newer. Ids that do not parse sort first. */
export function compareStreamIds(a: string, b: string): number {
  const x = parseStreamId(a);
  const y = parseStreamId(b);
  if (!x || !y) return (x ? 1 : 0) - (y ? 1 : 0);
  return x.ms !== y.ms ? x.ms - y.ms : x.seq - y.seq;
}

/** The time (ms) a stream id was written. */
export function streamIdTime(id: string): number | undefined {
  return parseStreamId(id)?.ms;
}
