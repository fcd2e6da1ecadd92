/**
 * One gRPC call on one HTTP/2 stream: checks the request's headers, collects its message,
 * hands the call to its method, and answers with headers, messages and trailers (or a
 * Trailers-Only response when no message was sent). Also owns the call's deadline and tells the
 * method, through `signal`, when the client is gone.
 */
import {
  DeadlineExceededError,
  errorMessage,
  InternalError,
  RuntimeError,
} from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import {
  ErrorCode,
  type HeaderField,
  type ServerStream,
  type StreamEnd,
  type StreamListener,
} from "./h2/mod.ts";
import { GrpcCode, type GrpcStatus, toGrpcStatus } from "./grpc_status.ts";
import {
  frameMessage,
  messagePrefix,
  MessageReader,
  parseGrpcTimeout,
  percentEncode,
} from "./grpc_wire.ts";

/** A method the server routes calls to. */
export interface GrpcRoute {
  /** Client streaming per the proto; such methods are refused (the CRI has none). */
  requestStream: boolean;
  /** Protobuf bytes to the request object; throws if malformed. */
  decodeRequest(bytes: Uint8Array): unknown;
  /** Runs the call; must end it with `call.end` eventually, and must not throw. */
  handle(call: ServerCall): void;
}

/** A call as a method implementation sees it. */
export interface ServerCall {
  /** The decoded request message. */
  readonly request: unknown;
  /** When the client gives up, as a `Date.now()` time; Infinity without `grpc-timeout`. */
  readonly deadline: number;
  /**
   * Aborts when the call is over without the method having ended it: the client cancelled or
   * left (ClientCancelledError), the deadline passed (DeadlineExceededError), or the client
   * stopped reading a stream (ResourceExhausted).
   */
  readonly signal: AbortSignal;
  /** Sends one encoded response message; ignored once the call is over. */
  send(message: Uint8Array): void;
  /** Ends the call with this status; the first end counts, later ones are ignored. */
  end(status: GrpcStatus): void;
}

/** The client reset the stream or closed the connection before the call was answered. */
export class ClientCancelledError extends RuntimeError {
  constructor() {
    super("Aborted", "the client cancelled the call");
  }
}

/** What a call accepts and buffers at most. */
export interface CallLimits {
  /** Largest request message accepted. */
  maxRequestBytes: number;
  /** A stream whose unsent output grows past this while its client reads nothing is cut off. */
  maxQueuedBytes: number;
}

/** The limits every CRI call runs with. */
export const DEFAULT_CALL_LIMITS: CallLimits = {
  // The kubelet's own limit for what it sends.
  maxRequestBytes: 16 * 1024 * 1024,
  maxQueuedBytes: 64 * 1024 * 1024,
};

// A cancel this close to the deadline is the deadline: the client's timer starts a moment
// before ours, so it resets the stream just before we would have answered DEADLINE_EXCEEDED.
const DEADLINE_SLACK_MS = 50;
// Longer timers overflow (setTimeout takes a signed 32-bit delay); such a deadline is no deadline.
const MAX_TIMER_MS = 2 ** 31 - 1;
// A status message is for humans; a huge one could exceed the client's header list limit.
const MAX_DETAILS_CHARS = 4_096;
// Below this a message and its prefix are copied into one DATA payload; above, sent as two.
const COPY_BELOW_BYTES = 64 * 1024;

const RESPONSE_HEADERS: HeaderField[] = [[":status", "200"], ["content-type", "application/grpc"]];
const ACCEPT_IDENTITY: HeaderField[] = [["grpc-accept-encoding", "identity"]];
/** A lowercase token, or a pseudo-header's ':' and one (RFC 9110 §5.1, RFC 9113 §8.2.1). */
const FIELD_NAME = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const FORBIDDEN_IN_VALUE = /[\0\r\n]/;
const TE_OR_CONNECTION = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

type Phase = "receiving" | "running" | "ended";

/** Starts a call on a new stream; returns the stream's listener. */
export function acceptCall(options: {
  stream: ServerStream;
  route: (path: string) => GrpcRoute | undefined;
  log: Logger;
  limits?: CallLimits;
}): StreamListener {
  return new GrpcServerCall(options.stream, options.route, options.log, options.limits);
}

class GrpcServerCall implements ServerCall, StreamListener {
  request: unknown = undefined;
  deadline = Infinity;
  readonly #stream: ServerStream;
  readonly #log: Logger;
  readonly #limits: CallLimits;
  readonly #controller = new AbortController();
  #reader: MessageReader | undefined;
  #message: Uint8Array | undefined;
  #route: GrpcRoute | undefined;
  #phase: Phase = "receiving";
  #headersSent = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    stream: ServerStream,
    route: (path: string) => GrpcRoute | undefined,
    log: Logger,
    limits: CallLimits = DEFAULT_CALL_LIMITS,
  ) {
    this.#stream = stream;
    this.#log = log;
    this.#limits = limits;
    this.#start(route);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  // ---- request ----

  #start(route: (path: string) => GrpcRoute | undefined): void {
    const stream = this.#stream;
    if (stream.headersTooLarge) {
      return this.end({
        code: GrpcCode.RESOURCE_EXHAUSTED,
        details: "Request headers exceed the header list size limit",
      });
    }
    const request = readRequestHeaders(stream.headers);
    if (typeof request === "string") {
      // Not well-formed HTTP/2 (RFC 9113 §8.1.1): the stream is reset, not answered.
      this.#log.debug("Malformed request stream", { stream_id: stream.id, error: request });
      this.#phase = "ended";
      return stream.reset(ErrorCode.PROTOCOL_ERROR);
    }
    const header = (name: string) => request.fields.get(name);
    if (request.method !== "POST") {
      return this.#refuse(405, GrpcCode.INTERNAL, `Method "${request.method}" is not POST`);
    }
    const contentType = header("content-type") ?? "";
    if (!/^application\/grpc($|[+;])/.test(contentType)) {
      return this.#refuse(
        415,
        GrpcCode.INTERNAL,
        `Content type "${contentType}" is not application/grpc`,
      );
    }
    const timeout = header("grpc-timeout");
    if (timeout !== undefined) {
      const ms = parseGrpcTimeout(timeout);
      if (ms === undefined) {
        return this.end({
          code: GrpcCode.INTERNAL,
          details: `Malformed grpc-timeout "${timeout}"`,
        });
      }
      this.deadline = Date.now() + ms;
      if (ms <= MAX_TIMER_MS) this.#timer = setTimeout(() => this.#deadlineReached(), ms);
    }
    const encoding = header("grpc-encoding");
    if (encoding !== undefined && encoding !== "identity") {
      return this.#finish({
        code: GrpcCode.UNIMPLEMENTED,
        details: `Message encoding "${encoding}" is not supported: pve-cri accepts identity only`,
      }, ACCEPT_IDENTITY);
    }
    this.#route = route(request.path);
    if (this.#route === undefined) {
      return this.end({
        code: GrpcCode.UNIMPLEMENTED,
        details: `Method "${request.path}" is not served by pve-cri`,
      });
    }
    if (this.#route.requestStream) {
      return this.end({
        code: GrpcCode.UNIMPLEMENTED,
        details: `Method "${request.path}" streams requests, which pve-cri does not support`,
      });
    }
    this.#reader = new MessageReader(this.#limits.maxRequestBytes);
  }

  onData(chunk: Uint8Array, end: boolean): void {
    const reader = this.#reader;
    if (this.#phase !== "receiving" || reader === undefined) return;
    reader.push(chunk);
    try {
      for (let message = reader.next(); message !== undefined; message = reader.next()) {
        // Unary requests carry exactly one message.
        if (this.#message !== undefined) {
          throw new InternalError("Request has more than one message");
        }
        this.#message = message;
      }
    } catch (error) {
      const status = toGrpcStatus(error);
      // A compressed message: say which encodings we take (PROTOCOL-HTTP2.md, Compression).
      return this.#finish(status, status.code === GrpcCode.UNIMPLEMENTED ? ACCEPT_IDENTITY : []);
    }
    if (!end) return;
    if (reader.buffered > 0) {
      return this.end({ code: GrpcCode.INTERNAL, details: "Request ends inside a message" });
    }
    if (this.#message === undefined) {
      return this.end({ code: GrpcCode.INTERNAL, details: "Request has no message" });
    }
    this.#dispatch(this.#message);
  }

  #dispatch(message: Uint8Array): void {
    const route = this.#route!;
    try {
      this.request = route.decodeRequest(message);
    } catch (error) {
      return this.end({
        code: GrpcCode.INTERNAL,
        details: `Request cannot be decoded: ${errorMessage(error)}`,
      });
    }
    this.#phase = "running";
    try {
      route.handle(this);
    } catch (error) {
      this.end(toGrpcStatus(error));
    }
  }

  // ---- response ----

  send(message: Uint8Array): void {
    if (this.#phase === "ended" || this.#closed) return;
    if (!this.#headersSent) {
      this.#headersSent = true;
      this.#stream.respond(RESPONSE_HEADERS);
    }
    const waiting = this.#stream.queuedBytes;
    if (message.length < COPY_BELOW_BYTES) {
      this.#stream.write(frameMessage(message));
    } else {
      this.#stream.write(messagePrefix(message.length));
      this.#stream.write(message);
    }
    if (waiting > 0 && this.#stream.queuedBytes > this.#limits.maxQueuedBytes) {
      // Earlier messages are still waiting and the pile keeps growing: the client has stopped
      // reading. Cut the stream off before it eats the memory. (One large answer is not that.)
      this.#abort(
        new RuntimeError(
          "ResourceExhausted",
          `The client is not reading its stream: ${this.#stream.queuedBytes} bytes queued`,
        ),
      );
      this.#phase = "ended";
      this.#stream.reset(ErrorCode.ENHANCE_YOUR_CALM);
    }
  }

  end(status: GrpcStatus): void {
    this.#finish(status);
  }

  #finish(status: GrpcStatus, extraHeaders: readonly HeaderField[] = []): void {
    if (this.#phase === "ended" || this.#closed) return;
    this.#phase = "ended";
    const trailers: HeaderField[] = [...extraHeaders, ["grpc-status", String(status.code)]];
    if (status.code !== GrpcCode.OK && status.details !== "") {
      trailers.push(["grpc-message", percentEncode(status.details.slice(0, MAX_DETAILS_CHARS))]);
    }
    if (this.#headersSent) {
      this.#stream.end(trailers);
    } else {
      // Trailers-Only: one HEADERS frame with the status and END_STREAM.
      this.#stream.respond([...RESPONSE_HEADERS, ...trailers], { endStream: true });
    }
  }

  /** A Trailers-Only answer with an HTTP status other than 200, for requests that are not gRPC. */
  #refuse(httpStatus: number, code: GrpcCode, details: string): void {
    this.#phase = "ended";
    this.#stream.respond([
      [":status", String(httpStatus)],
      ["content-type", "application/grpc"],
      ["grpc-status", String(code)],
      ["grpc-message", percentEncode(details)],
    ], { endStream: true });
  }

  // ---- the call's end ----

  onClose(end: StreamEnd): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (end.kind === "done" || this.#phase === "ended") return;
    const nearDeadline = Date.now() >= this.deadline - DEADLINE_SLACK_MS;
    this.#phase = "ended";
    this.#abort(
      nearDeadline ? new DeadlineExceededError("Deadline exceeded") : new ClientCancelledError(),
    );
  }

  #deadlineReached(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    switch (this.#phase) {
      case "receiving":
        return this.end({ code: GrpcCode.DEADLINE_EXCEEDED, details: "Deadline exceeded" });
      case "running":
        // The method answers DEADLINE_EXCEEDED through end() when its signal aborts.
        return this.#abort(new DeadlineExceededError("Deadline exceeded"));
      case "ended":
        // Answered, but the client has not taken the answer and has given up on it by now.
        return this.#stream.reset(ErrorCode.CANCEL);
    }
  }

  #abort(reason: RuntimeError): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }
}

interface RequestHeaders {
  method: string;
  path: string;
  /** Regular (non-pseudo) fields by name; a repeated field keeps its first value. */
  fields: Map<string, string>;
}

/** The request's pseudo-headers and fields, or why the header list is malformed. */
function readRequestHeaders(headers: readonly HeaderField[]): RequestHeaders | string {
  const pseudo = new Map<string, string>();
  const fields = new Map<string, string>();
  for (const [name, value] of headers) {
    if (name !== name.toLowerCase()) return `Header name "${name}" is not lowercase`;
    // RFC 9113 §8.2.1: names are tokens (a leading ':' aside); values hold no NUL, CR or LF
    // and neither start nor end with whitespace.
    if (!FIELD_NAME.test(name)) return `Header name "${name}" holds a character it may not`;
    if (FORBIDDEN_IN_VALUE.test(value)) return `Header "${name}" has a value with NUL, CR or LF`;
    if (/^[ \t]|[ \t]$/.test(value)) return `Header "${name}" has a value padded with whitespace`;
    if (name.startsWith(":")) {
      if (fields.size > 0) return `Pseudo-header "${name}" after regular headers`;
      if (![":method", ":scheme", ":path", ":authority"].includes(name)) {
        return `Unknown request pseudo-header "${name}"`;
      }
      if (pseudo.has(name)) return `Pseudo-header "${name}" repeated`;
      pseudo.set(name, value);
      continue;
    }
    if (TE_OR_CONNECTION.has(name)) return `Connection-specific header "${name}"`;
    if (name === "te" && value !== "trailers") return `Header "te" is "${value}", not "trailers"`;
    if (!fields.has(name)) fields.set(name, value);
  }
  const method = pseudo.get(":method");
  const path = pseudo.get(":path");
  if (method === undefined || path === undefined || path === "" || !pseudo.has(":scheme")) {
    return "Request lacks :method, :scheme or :path";
  }
  return { method, path, fields };
}
