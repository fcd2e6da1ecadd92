/**
 * The one wrapper every CRI method goes through: readiness, cancellation, logs, error codes.
 * Handlers stay thin; everything that is the same for all 43 methods lives here.
 */
import { errorMessage, InternalError, RuntimeError, UnavailableError } from "../../lib/errors.ts";
import { EncodedResponse } from "./encoded_response.ts";
import type { Logger, LogLevel } from "../../lib/log.ts";
import { ClientCancelledError, type ServerCall } from "./grpc_call.ts";
import { GrpcCode, grpcCodeName, type GrpcStatus, toGrpcStatus } from "./grpc_status.ts";
import type { RpcContext, StreamHandler, UnaryHandler } from "./rpc.ts";

export { toGrpcStatus } from "./grpc_status.ts";

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

/** Reads are polled constantly by the kubelet, so they log at debug; mutations at info. */
export function logLevelOf(method: string): LogLevel {
  const read = /^(List|Stream)|Status$|Stats$/.test(method) ||
    ["Version", "ImageFsInfo", "RuntimeConfig", "GetContainerEvents"].includes(method);
  return read ? "debug" : "info";
}

const unimplemented = (method: string): GrpcStatus => ({
  code: GrpcCode.UNIMPLEMENTED,
  details: `pve-cri does not implement ${method} yet`,
});

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Turns a handler into the route handler of one method: it answers every call exactly once. */
export function wrap(options: WrapOptions): (call: ServerCall) => void {
  const { method, streaming, handler, isReady, lifecycle } = options;
  const level = logLevelOf(method);

  /** Encodes here, so a malformed response fails with a message naming the method and field. */
  const encode = (message: unknown): Uint8Array => {
    if (message instanceof EncodedResponse) return message.bytes; // already protobuf
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
      return { code: GrpcCode.UNAVAILABLE, details: "pve-cri is shutting down" };
    }
    if (!isReady()) return { code: GrpcCode.UNAVAILABLE, details: "runtime is not ready" };
    return undefined;
  };

  const serve = async (call: ServerCall) => {
    const started = performance.now();
    const requestId = crypto.randomUUID();
    const log = options.log.with({ method, request_id: requestId });
    // Unimplemented comes first: it does not depend on the runtime's state.
    const refused = handler === undefined ? unimplemented(method) : refusal();
    if (refused !== undefined || handler === undefined) {
      const status = refused ?? unimplemented(method);
      log.debug("CRI call refused", { code: grpcCodeName(status.code), error: status.details });
      call.end(status);
      return;
    }

    const controller = new AbortController();
    const cleanup = abortOnCallEnd({ call, controller, streaming, lifecycle });
    const ctx: RpcContext = {
      method,
      requestId,
      signal: controller.signal,
      deadline: call.deadline,
      log,
    };
    log[level]("CRI call started");

    let ended = false;
    const send = (message: unknown) => {
      if (ended || controller.signal.aborted) return;
      call.send(encode(message)); // encode throws into the handler when malformed
    };
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
    ended = true;
    cleanup();

    const duration_ms = Math.round((performance.now() - started) * 1000) / 1000;
    if (outcome.ok) {
      if (!streaming) call.send(outcome.value as Uint8Array);
      call.end({ code: GrpcCode.OK, details: "" });
      log[level]("CRI call finished", { code: "OK", duration_ms });
      return;
    }
    const status = outcome.error instanceof ClientCancelledError
      ? { code: GrpcCode.CANCELLED, details: outcome.error.message }
      : toGrpcStatus(outcome.error);
    call.end(status);
    const unexpected = !(outcome.error instanceof RuntimeError) ||
      outcome.error.code === "Internal";
    log[unexpected ? "error" : level]("CRI call failed", {
      code: grpcCodeName(status.code),
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

  // serve() only throws if isReady() does; the call must still get an answer.
  return (call) => void serve(call).catch((error) => call.end(toGrpcStatus(error)));
}

/**
 * Aborts `controller` when the call ends on the wire (client cancel, deadline, slow reader),
 * the server drains (streams only: unary calls get to finish) or terminates. Returns the cleanup.
 */
function abortOnCallEnd(options: {
  call: ServerCall;
  controller: AbortController;
  streaming: boolean;
  lifecycle: ServerLifecycle;
}): () => void {
  const { call, controller, streaming, lifecycle } = options;
  const onCallEnd = () => controller.abort(call.signal.reason);
  const onShutdown = () => controller.abort(new UnavailableError("pve-cri is shutting down"));

  if (call.signal.aborted) onCallEnd();
  else call.signal.addEventListener("abort", onCallEnd, { once: true });
  if (streaming) lifecycle.draining.addEventListener("abort", onShutdown, { once: true });
  lifecycle.terminating.addEventListener("abort", onShutdown, { once: true });

  return () => {
    call.signal.removeEventListener("abort", onCallEnd);
    lifecycle.draining.removeEventListener("abort", onShutdown);
    lifecycle.terminating.removeEventListener("abort", onShutdown);
  };
}
