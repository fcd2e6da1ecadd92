/**
 * gRPC status codes (grpc/doc/statuscodes.md) and how pve-cri's errors become them: typed
 * errors keep their code, everything else is INTERNAL with its message only.
 */
import { errorMessage, RuntimeError, type StatusCode } from "../../lib/errors.ts";

/** The status codes as sent in `grpc-status`. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/** How a call ends: a code and, unless OK, a message for the client. */
export interface GrpcStatus {
  code: GrpcCode;
  details: string;
}

const names = new Map<number, string>(Object.entries(GrpcCode).map(([name, code]) => [code, name]));

/** "NOT_FOUND" for 5, as logs and clients name codes. */
export function grpcCodeName(code: number): string {
  return names.get(code) ?? String(code);
}

const fromStatusCode: Record<StatusCode, GrpcCode> = {
  InvalidArgument: GrpcCode.INVALID_ARGUMENT,
  NotFound: GrpcCode.NOT_FOUND,
  AlreadyExists: GrpcCode.ALREADY_EXISTS,
  FailedPrecondition: GrpcCode.FAILED_PRECONDITION,
  Aborted: GrpcCode.ABORTED,
  Unavailable: GrpcCode.UNAVAILABLE,
  DeadlineExceeded: GrpcCode.DEADLINE_EXCEEDED,
  PermissionDenied: GrpcCode.PERMISSION_DENIED,
  Unauthenticated: GrpcCode.UNAUTHENTICATED,
  ResourceExhausted: GrpcCode.RESOURCE_EXHAUSTED,
  Unimplemented: GrpcCode.UNIMPLEMENTED,
  DataLoss: GrpcCode.DATA_LOSS,
  Internal: GrpcCode.INTERNAL,
};

const toStatusCode = new Map<number, StatusCode>(
  Object.entries(fromStatusCode).map(([status, code]) => [code, status as StatusCode]),
);

/** Ours for a gRPC code a server sent (a client's side); codes we never send are Internal. */
export function statusCodeOf(code: number): StatusCode {
  return toStatusCode.get(code) ?? "Internal";
}

/** The gRPC status for anything thrown: typed errors keep their code, the rest is INTERNAL. */
export function toGrpcStatus(error: unknown): GrpcStatus {
  if (error instanceof RuntimeError) {
    return { code: fromStatusCode[error.code], details: error.message };
  }
  // Only the message: a stack would leak paths and internals to the client.
  return { code: GrpcCode.INTERNAL, details: errorMessage(error) };
}
