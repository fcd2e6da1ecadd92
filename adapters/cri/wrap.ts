/**
 * The one wrapper every CRI method goes through: readiness, cancellation, logs, error codes.
 * Handlers stay thin; everything that is the same for all 43 methods lives here.
 */
import { Buffer } from "node:buffer";
import { EncodedResponse } from "./encoded_response.ts";
import * as grpc from "@grpc/grpc-js";
import {
  DeadlineExceededError,
  errorMessage,
  InternalError,
  RuntimeError,
  type StatusCode,
  UnavailableError,
} from "../../lib/errors.ts";
import type { Logger, LogLevel } from "../../lib/log.ts";
import type { CriMessage, RpcContext, StreamHandler, UnaryHandler } from "./rpc.ts";

/** The server's side of every call: when to stop, and where to report running handlers. */
export interface ServerLifecycle {
  /** Aborted when the server starts closing: open streams end, new calls get UNAVAILABLE. */
  readonly draining: AbortSignal;
  /** Aborted when the grace period is over: every handler's signal aborts. */
  readonly terminating: AbortSignal;
  /** Registers a running handler; `settled` never rejects. */
  track(settled: Promise<void>): void;
}

export interface WrapOptions {
  /** Proto method name, e.g. "RunPodSandbox". */
  method: string;
  /** Server-streaming per the proto. */
  streaming: boolean;
  /** Undefined: the method answers UNIMPLEMENTED. */
  handler: UnaryHandler | StreamHandler | undefined;
  /** The response message's protobuf encoder; the wrapper encodes before answering. */
  encode: (message: unknown) => Uint8Array;
  /** False: every call answers UNAVAILABLE. */
  isReady: () => boolean;
  log: Logger;
  lifecycle: ServerLifecycle;
}

const grpcCodes: Record<StatusCode, grpc.status> = {
  InvalidArgument: grpc.status.INVALID_ARGUMENT,
  NotFound: grpc.status.NOT_FOUND,
  AlreadyExists: grpc.status.ALREADY_EXISTS,
  FailedPrecondition: grpc.status.FAILED_PRECONDITION,
  Aborted: grpc.status.ABORTED,
  Unavailable: grpc.status.UNAVAILABLE,
  DeadlineExceeded: grpc.status.DEADLINE_EXCEEDED,
  PermissionDenied: grpc.status.PERMISSION_DENIED,
  Unauthenticated: grpc.status.UNAUTHENTICATED,
  ResourceExhausted: grpc.status.RESOURCE_EXHAUSTED,
  Unimplemented: grpc.status.UNIMPLEMENTED,
  Internal: grpc.status.INTERNAL,
};

/** The gRPC status for anything a handler throws: typed errors keep their code, the rest is INTERNAL. */
export function toGrpcStatus(error: unknown): { code: grpc.status; details: string } {
  if (error instanceof RuntimeError) return { code: grpcCodes[error.code], details: error.message };
  // Only the message: a stack would leak paths and internals to the client.
  return { code: grpc.status.INTERNAL, details: errorMessage(error) };
}

/** Reads are polled constantly by the kubelet, so they log at debug; mutations at info. */
export function logLevelOf(method: string): LogLevel {
  const read = /^(List|Stream)|Status$|Stats$/.test(method) ||
    ["Version", "ImageFsInfo", "RuntimeConfig", "GetContainerEvents"].includes(method);
  return read ? "debug" : "info";
}

class ClientCancelledError extends RuntimeError {
  constructor() {
    super("Aborted", "the client cancelled the call");
  }
}

// A cancel this close to the call's deadline counts as the deadline (see abortOnCallEnd).
const DEADLINE_SLACK_MS = 50;

type GrpcStatus = { code: grpc.status; details: string };
type AnyCall =
  | grpc.ServerUnaryCall<CriMessage, CriMessage>
  | grpc.ServerWritableStream<CriMessage, CriMessage>;

const unimplemented = (method: string): GrpcStatus => ({
  code: grpc.status.UNIMPLEMENTED,
  details: `pve-cri does not implement ${method} yet`,
});

/** What both grpc-js call kinds offer for cancellation. */
interface CancellableCall {
  readonly cancelled: boolean;
  getDeadline(): grpc.Deadline;
  on(event: "cancelled", listener: () => void): unknown;
  off(event: "cancelled", listener: () => void): unknown;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** How a call answers: once, whichever of the handler and the signal comes first. */
interface Reply {
  succeed(value: unknown): void;
  fail(status: GrpcStatus): void;
}

/** Turns a handler into a grpc-js handler for one method. */
export function wrap(options: WrapOptions): grpc.UntypedHandleCall {
  const { method, streaming, handler, isReady, lifecycle } = options;
  const level = logLevelOf(method);

  /** Encodes here rather than in grpc-js, whose failure would reach nobody but the client. */
  const encode = (message: unknown): Uint8Array => {
    if (message instanceof EncodedResponse) {
      // grpc-js writes Buffers only.
      const { bytes } = message;
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    try {
      return options.encode(message ?? {});
    } catch (error) {
      throw new InternalError(`${method} response cannot be encoded: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  };

  /** Why a call is answered without running the handler, if it is. */
  const refusal = (): GrpcStatus | undefined => {
    if (lifecycle.draining.aborted) {
      return { code: grpc.status.UNAVAILABLE, details: "pve-cri is shutting down" };
    }
    if (!isReady()) return { code: grpc.status.UNAVAILABLE, details: "runtime is not ready" };
    return undefined;
  };

  const serve = async (call: AnyCall, reply: Reply, send: (message: unknown) => void) => {
    const started = performance.now();
    const requestId = crypto.randomUUID();
    const log = options.log.with({ method, request_id: requestId });
    // Unimplemented comes first: it does not depend on the runtime's state.
    const refused = handler === undefined ? unimplemented(method) : refusal();
    if (refused !== undefined || handler === undefined) {
      const status = refused ?? unimplemented(method);
      log.debug("CRI call refused", { code: grpc.status[status.code], error: status.details });
      reply.fail(status);
      return;
    }

    const controller = new AbortController();
    const cleanup = abortOnCallEnd({ call, controller, streaming, lifecycle });
    const ctx: RpcContext = { method, requestId, signal: controller.signal, log };
    log[level]("CRI call started");

    // A handler that throws synchronously or never settles must not escape or wedge the call.
    const running: Promise<Outcome> = (async () => {
      try {
        if (streaming) {
          await (handler as StreamHandler)(call.request, ctx, send);
          return { ok: true, value: undefined };
        }
        return { ok: true, value: encode(await (handler as UnaryHandler)(call.request, ctx)) };
      } catch (error) {
        return { ok: false, error };
      }
    })();
    lifecycle.track(running.then(() => {}));

    const aborted = new Promise<Outcome>((resolve) => {
      const onAbort = () => resolve({ ok: false, error: controller.signal.reason });
      if (controller.signal.aborted) onAbort();
      else controller.signal.addEventListener("abort", onAbort, { once: true });
    });
    const outcome = await Promise.race([running, aborted]);
    cleanup();

    const duration_ms = Math.round((performance.now() - started) * 1000) / 1000;
    if (outcome.ok) {
      reply.succeed(outcome.value);
      log[level]("CRI call finished", { code: "OK", duration_ms });
      return;
    }
    const status = outcome.error instanceof ClientCancelledError
      ? { code: grpc.status.CANCELLED, details: outcome.error.message }
      : toGrpcStatus(outcome.error);
    reply.fail(status);
    const unexpected = !(outcome.error instanceof RuntimeError) ||
      outcome.error.code === "Internal";
    log[unexpected ? "error" : level]("CRI call failed", {
      code: grpc.status[status.code],
      error: status.details,
      duration_ms,
      ...(unexpected && outcome.error instanceof Error ? { stack: outcome.error.stack } : {}),
    });
    if (controller.signal.aborted) {
      // The call is over on the wire; say so if the handler ignores its signal for long.
      void running.then((late) => {
        log.debug("CRI handler settled after its call ended", {
          outcome: late.ok ? "ok" : errorMessage(late.error),
          duration_ms: Math.round(performance.now() - started),
        });
      });
    }
  };

  if (streaming) {
    return (call: grpc.ServerWritableStream<CriMessage, CriMessage>) => {
      let ended = false;
      const end = (finish: () => void) => {
        if (ended) return;
        ended = true;
        finish();
      };
      const reply: Reply = {
        succeed: () => end(() => call.end()),
        // grpc-js turns an 'error' event into the call's status and ends the stream.
        fail: (status) => end(() => call.emit("error", status)),
      };
      const send = (message: unknown) => {
        if (ended || call.cancelled) return;
        call.write(encode(message)); // encode throws into the handler when malformed
      };
      // serve() only throws if isReady() does; the call must still get an answer.
      serve(call, reply, send).catch((error) => reply.fail(toGrpcStatus(error)));
    };
  }
  return (
    call: grpc.ServerUnaryCall<CriMessage, CriMessage>,
    callback: grpc.sendUnaryData<CriMessage>,
  ) => {
    let answered = false;
    const answer = (...args: Parameters<grpc.sendUnaryData<CriMessage>>) => {
      if (answered) return;
      answered = true;
      callback(...args);
    };
    const reply: Reply = {
      succeed: (encoded) => answer(null, encoded),
      fail: (status) => answer(status),
    };
    serve(call, reply, () => {}).catch((error) => reply.fail(toGrpcStatus(error)));
  };
}

/**
 * Aborts `controller` when the client cancels, the call's deadline passes, the server drains
 * (streams only: unary calls get to finish) or terminates. Returns the cleanup.
 */
function abortOnCallEnd(options: {
  call: CancellableCall;
  controller: AbortController;
  streaming: boolean;
  lifecycle: ServerLifecycle;
}): () => void {
  const { call, controller, streaming, lifecycle } = options;
  const abort = (reason: RuntimeError) => controller.abort(reason);
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const deadlineExceeded = () => abort(new DeadlineExceededError("Deadline exceeded"));
  // At the deadline grpc-js cancels the call itself, and the client's own timer may reset the
  // stream a moment earlier: a cancel that close to the deadline is the deadline.
  const onCancel = () =>
    Date.now() >= deadlineMs - DEADLINE_SLACK_MS
      ? deadlineExceeded()
      : abort(new ClientCancelledError());
  const onDrain = () => abort(new UnavailableError("pve-cri is shutting down"));
  const onTerminate = () => abort(new UnavailableError("pve-cri is shutting down"));

  call.on("cancelled", onCancel);
  if (call.cancelled) onCancel();
  if (streaming) lifecycle.draining.addEventListener("abort", onDrain, { once: true });
  lifecycle.terminating.addEventListener("abort", onTerminate, { once: true });
  const timer = Number.isFinite(deadlineMs)
    ? setTimeout(deadlineExceeded, Math.max(0, deadlineMs - Date.now()))
    : undefined;

  return () => {
    clearTimeout(timer);
    call.off("cancelled", onCancel);
    lifecycle.draining.removeEventListener("abort", onDrain);
    lifecycle.terminating.removeEventListener("abort", onTerminate);
  };
}
