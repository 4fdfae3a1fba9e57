/**
 * One base error for the project, with a string-literal `code` a caller can
 * switch on, and `retryable` saying whether trying the same thing again can help.
 */
export const ErrorCode = {
  InvalidInput: 'INVALID_INPUT',
  NotFound: 'NOT_FOUND',
  Rejected: 'REJECTED',
  NoResponders: 'NO_RESPONDERS',
  Timeout: 'TIMEOUT',
  MissingBinary: 'MISSING_BINARY',
  Aborted: 'ABORTED',
  /** A server did not answer within the bounded time of a one-shot command. */
  Unavailable: 'UNAVAILABLE',
  Unauthorized: 'UNAUTHORIZED',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class ClusterSyncError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/** Bad input: a file, a field or a message that fails validation. Never worth retrying. */
export class InvalidInputError extends ClusterSyncError {
  /** Where the input came from (a file path, a subject, "request body"). */
  readonly source: string;
  /** Dotted path of the offending field, when one field is to blame. */
  readonly field: string | undefined;
  constructor(source: string, message: string, field?: string, options?: { cause?: unknown }) {
    super(ErrorCode.InvalidInput, `${source}: ${field ? `${field}: ` : ''}${message}`, options);
    this.source = source;
    this.field = field;
  }
}

export class NotFoundError extends ClusterSyncError {
  constructor(message: string) {
    super(ErrorCode.NotFound, message);
  }
}

/** A report or request the workers refused, with their reason. Not worth retrying as it is. */
export class RejectedError extends ClusterSyncError {
  readonly reason: string;
  constructor(reason: string) {
    super(ErrorCode.Rejected, `rejected: ${reason}`);
    this.reason = reason;
  }
}

/** Nobody answered on a NATS subject: no worker is listening. Worth retrying. */
export class NoRespondersError extends ClusterSyncError {
  constructor(subject: string, options?: { cause?: unknown }) {
    super(ErrorCode.NoResponders, `no worker is listening on ${subject} (is "cluster-sync worker" running?)`, {
      ...options,
      retryable: true,
    });
  }
}

export class TimeoutError extends ClusterSyncError {
  constructor(message: string) {
    super(ErrorCode.Timeout, message, { retryable: true });
  }
}

/** The cluster aborted while this node waited (a node failed, died, or a barrier timed out). Not worth retrying. */
export class ClusterAbortedError extends ClusterSyncError {
  readonly reason: string;
  constructor(reason: string) {
    super(ErrorCode.Aborted, `cluster aborted: ${reason}`);
    this.reason = reason;
  }
}

export class MissingBinaryError extends ClusterSyncError {
  readonly binary: string;
  constructor(binary: string, hint: string) {
    super(ErrorCode.MissingBinary, `${binary} not found on PATH: ${hint}`);
    this.binary = binary;
  }
}

/** A server (scheduler, Redis, NATS) did not answer in time; the message names its URL. Worth retrying later. */
export class UnavailableError extends ClusterSyncError {
  constructor(
    readonly url: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(ErrorCode.Unavailable, message, { ...options, retryable: true });
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
