/**
 * The contract between the gRPC plumbing and the CRI method implementations: what a handler
 * receives and returns, and how protobuf messages look in JavaScript.
 */
import type { Options as ProtoLoaderOptions } from "@grpc/proto-loader";
import type { Logger } from "../../lib/log.ts";

/** The CRI v1 definition pve-cri serves (package runtime.v1). */
export const CRI_PROTO_PATH = new URL("../../proto/api.proto", import.meta.url).pathname;

/** pve-cri's image tool service (package pvecri.v1), served on the same socket. */
export const IMAGE_TOOL_PROTO_PATH =
  new URL("../../proto/image_tool.proto", import.meta.url).pathname;

/**
 * How protobuf messages map to plain objects, for the server and every client alike:
 * - `keepCase`: field names as in the proto (`pod_sandbox_id`), as crictl and the kubelet send them;
 * - `longs: String`: int64/uint64 are decimal strings both ways, so nanosecond times never lose
 *   precision in a JS number (a handler returns `"1700000000123456789"`, not a number);
 * - `enums: String`: enum values by name (`"CONTAINER_RUNNING"`);
 * - `defaults: true`: absent scalars read as their zero value, absent messages as `null`;
 * - `oneofs: true`: a oneof's set member is named in a virtual field.
 */
export const PROTO_LOADER_OPTIONS: ProtoLoaderOptions = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * A CRI message: a plain object shaped by {@link PROTO_LOADER_OPTIONS}. Untyped on purpose:
 * there is no code generation, and each method validates the fields it reads.
 */
// deno-lint-ignore no-explicit-any
export type CriMessage = any;

/** What every handler gets besides the request. */
export interface RpcContext {
  /** Proto method name, e.g. "RunPodSandbox". */
  method: string;
  /** Unique per call; also in every log line of the call. */
  requestId: string;
  /** Aborted when the client cancels, its deadline passes, or the server shuts down. */
  signal: AbortSignal;
  /** The client's deadline (`Date.now()` time); Infinity without `grpc-timeout`. */
  deadline: number;
  /** Carries `method` and `request_id`. */
  log: Logger;
}

/** A unary method: resolves with the response message, or throws a `RuntimeError`. */
export type UnaryHandler = (request: CriMessage, ctx: RpcContext) => Promise<unknown>;

/**
 * A server-streaming method: calls `send` for each message; the stream ends when the returned
 * promise settles or `ctx.signal` aborts. `send` after the end is ignored; `send` of a message
 * that cannot be encoded throws an `InternalError` naming the field.
 */
export type StreamHandler = (
  request: CriMessage,
  ctx: RpcContext,
  send: (message: unknown) => void,
) => Promise<void>;

/**
 * The method implementations, by proto method name. A method without one answers
 * UNIMPLEMENTED. Whether a method streams comes from the proto, not from the handler.
 */
export interface CriHandlers {
  /** RuntimeService methods by name. */
  runtime: Partial<Record<string, UnaryHandler | StreamHandler>>;
  /** ImageService methods by name (StreamImages is the one streaming method). */
  image: Partial<Record<string, UnaryHandler | StreamHandler>>;
  /** pve-cri's ImageTool methods (`deno task images` beside a running server). */
  tool?: Partial<Record<string, UnaryHandler | StreamHandler>>;
}
