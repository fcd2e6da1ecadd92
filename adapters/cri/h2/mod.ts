/**
 * A server-side HTTP/2 implementation (RFC 9113, HPACK per RFC 7541) for gRPC clients that
 * connect with prior knowledge: one `Http2Connection` per accepted socket hands each request
 * stream to the application as a `ServerStream`.
 */
export {
  type ByteSocket,
  type ConnectionLimits,
  type ConnectionOptions,
  DEFAULT_CONNECTION_LIMITS,
  Http2Connection,
} from "./connection.ts";
export { ErrorCode, errorCodeName } from "./errors.ts";
export type { HeaderField } from "./hpack.ts";
export type { ServerStream, StreamEnd, StreamListener } from "./stream.ts";
