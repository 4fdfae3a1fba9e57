/**
 * The one rule for every identifier that arrives from outside: cluster ids,
 * node job ids, message IDs (and their data keys), testbox and host names,
 * spec names. Checked at the edge (HTTP query, path and header; NATS
 * message; CLI flag), so no process ever builds a NATS subject or a Redis key
 * from something longer than this or holding a wildcard.
 *
 * - 1 to {@link ID_MAX} characters of letters, digits, `_`, `.` and `-`
 *   (ASCII: one character is one byte). What real labs use fits:
 *   Compass-CI job ids (`crystal.4035283`, `z9.13402580`, digits), lkp-tests
 *   host names (`taishan200-2280-2s48p-256g--a13`,
 *   `vm-2p16g.taishan200-2280-2s64p-256g--a38-1`, `srv.lab.example.com`),
 *   cluster-sync's own ids (`cs-42`). 253 is a DNS name's limit, the
 *   longest a spec host (and so a testbox) may be.
 * - A cluster id also becomes one NATS subject token, so it holds no `.`
 *   (cluster-sync's cluster ids are `cs-N`). Testboxes keep their dots: in
 *   subjects each `.` is written `%2E` (`Subjects.take`).
 *
 * Worst case: the longest subject any process builds is the prefix (at most
 * 128) + `.queue.` + 3 × 253 (every `.` of a testbox written `%2E`) +
 * `.take`, under 1 KiB, far below nats-server's 4096-byte control line.
 *
 * No imports: the lava-* commands load this file (through names.ts).
 */
export const ID_MAX = 253;

/** The characters of an identifier. */
export const ID_CHARS = /^[A-Za-z0-9_.-]+$/;

/** What an identifier is, for the error that names it. */
export type IdKind = 'cluster id' | 'job id' | 'message id' | 'data key' | 'testbox' | 'host' | 'spec name' | 'subject token' | 'idempotency key';

/** The rule in words, for error messages and docs. */
export const ID_RULE = `1 to ${ID_MAX} letters, digits, "_", "." or "-"`;

/** Why `value` is no identifier of `kind` (a phrase: "is empty"), or undefined when it is one. */
export function idProblem(value: unknown, kind: IdKind): string | undefined {
  if (typeof value !== 'string') return 'must be text';
  if (value === '') return 'is empty';
  if (value.length > ID_MAX) return `is ${value.length} characters long; a ${kind} is at most ${ID_MAX}`;
  if (!ID_CHARS.test(value)) return `${JSON.stringify(shorten(value))} is no ${kind}: only letters, digits, "_", "." and "-" (no white space, "*" or ">")`;
  if ((kind === 'cluster id' || kind === 'subject token') && value.includes('.')) return `${JSON.stringify(value)} is no ${kind}: no "." (it is one NATS subject token)`;
  return undefined;
}

/** True when `value` is an identifier of `kind`. */
export function isId(value: unknown, kind: IdKind): value is string {
  return idProblem(value, kind) === undefined;
}

/** `value` when it is an identifier of `kind`; else throws an Error naming the rule. */
export function checkId(value: unknown, kind: IdKind): string {
  const problem = idProblem(value, kind);
  if (problem !== undefined) throw new Error(`${kind}: ${problem}`);
  return value as string;
}

/** The first 64 characters, for messages that quote what was sent. */
function shorten(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}...` : value;
}
