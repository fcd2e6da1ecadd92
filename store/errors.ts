import {
  AbortedError,
  AlreadyExistsError,
  FailedPreconditionError,
  InternalError,
  UnavailableError,
} from "../lib/errors.ts";
import type { ExpectedVersion } from "./types.ts";

export class ExpectedVersionConflictError extends AbortedError {
  constructor(
    readonly stream: string,
    readonly expected: ExpectedVersion,
    readonly actual: number,
  ) {
    super(
      `Stream "${stream}" is at version ${actual}, expected ${JSON.stringify(expected)}`,
      { details: { stream, expected, actual } },
    );
  }
}

export class StreamClosedError extends FailedPreconditionError {
  constructor(readonly stream: string) {
    super(`Stream "${stream}" is closed: it was removed`, { details: { stream } });
  }
}

/** A projection's unique key is already held by another stream. */
export class ProjectionKeyConflictError extends AlreadyExistsError {
  constructor(
    readonly projection: string,
    readonly key: string,
    readonly holder: string,
  ) {
    super(`Key "${key}" of projection "${projection}" is held by stream "${holder}"`, {
      details: { projection, key, holder },
    });
  }
}

/** A stored row that cannot be read back: bad JSON or a broken column. */
export class CorruptEventError extends InternalError {
  constructor(readonly stream: string, readonly seq: number, reason: string) {
    super(`Corrupt event at seq ${seq} in stream "${stream}": ${reason}`, {
      details: { stream, seq },
    });
  }
}

/** The database cannot be used: missing, busy, malformed, too new, or closed. */
export class StoreUnavailableError extends UnavailableError {
  constructor(
    readonly reason: "missing" | "busy" | "malformed" | "too_new" | "closed" | "io",
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause, details: { reason } });
  }
}
