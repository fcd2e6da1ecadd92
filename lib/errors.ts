/**
 * The one error family callers handle. Each error carries a status code named as in
 * google.rpc.Code, so the CRI layer maps it to gRPC without knowing where it came from.
 * Programming mistakes stay TypeError / RangeError.
 */
export type StatusCode =
  | "InvalidArgument"
  | "NotFound"
  | "AlreadyExists"
  | "FailedPrecondition"
  | "Aborted"
  | "Unavailable"
  | "DeadlineExceeded"
  | "PermissionDenied"
  | "Unauthenticated"
  | "ResourceExhausted"
  | "Unimplemented"
  | "DataLoss"
  | "Internal";

export interface RuntimeErrorOptions {
  cause?: unknown;
  /** Structured context for logs and replay; never secrets. */
  details?: Record<string, unknown>;
}

export class RuntimeError extends Error {
  readonly code: StatusCode;
  readonly details: Record<string, unknown>;

  constructor(code: StatusCode, message: string, options: RuntimeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }
}

export class InvalidArgumentError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("InvalidArgument", message, options);
  }
}

export class NotFoundError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("NotFound", message, options);
  }
}

export class AlreadyExistsError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("AlreadyExists", message, options);
  }
}

export class FailedPreconditionError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("FailedPrecondition", message, options);
  }
}

export class AbortedError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("Aborted", message, options);
  }
}

export class UnavailableError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("Unavailable", message, options);
  }
}

export class DeadlineExceededError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("DeadlineExceeded", message, options);
  }
}

export class UnauthenticatedError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("Unauthenticated", message, options);
  }
}

export class PermissionDeniedError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("PermissionDenied", message, options);
  }
}

/** Data that is not what it claims to be: a digest that does not match, a corrupt document. */
export class ResourceExhaustedError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("ResourceExhausted", message, options);
  }
}

export class DataLossError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("DataLoss", message, options);
  }
}

export class InternalError extends RuntimeError {
  constructor(message: string, options?: RuntimeErrorOptions) {
    super("Internal", message, options);
  }
}

/** The message of anything thrown, for error texts and failure events. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Wraps anything thrown into the family, keeping typed errors as they are. */
export function asRuntimeError(error: unknown, context: string): RuntimeError {
  if (error instanceof RuntimeError) return error;
  return new InternalError(`${context}: ${errorMessage(error)}`, { cause: error });
}
