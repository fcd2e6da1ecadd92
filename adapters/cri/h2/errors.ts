/**
 * HTTP/2 error codes (RFC 9113 §7) and the two ways a peer's mistake ends: a connection error
 * (GOAWAY, then the socket closes) or a stream error (RST_STREAM, the connection lives on).
 */
import { RuntimeError } from "../../../lib/errors.ts";

/** RFC 9113 §7 error codes, as sent in RST_STREAM and GOAWAY. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const names = new Map<number, string>(
  Object.entries(ErrorCode).map(([name, code]) => [code, name]),
);

/** "PROTOCOL_ERROR", or "0x1f" for codes RFC 9113 does not name. */
export function errorCodeName(code: number): string {
  return names.get(code) ?? `0x${code.toString(16)}`;
}

/** The peer broke the protocol in a way that ends the whole connection (GOAWAY with `h2Code`). */
export class ConnectionError extends RuntimeError {
  constructor(readonly h2Code: ErrorCode, message: string) {
    super("InvalidArgument", message, { details: { h2_code: errorCodeName(h2Code) } });
  }
}

/** The peer broke the protocol on one stream: that stream is reset with `h2Code`. */
export class StreamError extends RuntimeError {
  constructor(readonly streamId: number, readonly h2Code: ErrorCode, message: string) {
    super("InvalidArgument", message, {
      details: { stream_id: streamId, h2_code: errorCodeName(h2Code) },
    });
  }
}
