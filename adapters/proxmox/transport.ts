/**
 * HTTP/1.1 to the node over pooled keep-alive connections, written out by hand. Deno's
 * node:http client silently sends a request again when a reused connection closes without an
 * answer — a blind retry of a POST that may already have run. Here nothing is ever sent
 * twice; a failed request says whether it may have reached the server, and the caller
 * decides. Knows nothing of PVE's envelope.
 */
import type net from "node:net";
import { type Connector, createConnector, type TlsOptions, UntrustedServerError } from "./tls.ts";

/** A body sent as it is produced (an upload), of a length known up front. */
export interface StreamedBody {
  length: number;
  /** Each call starts the data over (a resend after a lost answer calls it again). */
  chunks(): AsyncIterable<Uint8Array>;
}

export interface HttpRequest {
  method: string;
  /** Path and query below the base URL's origin. */
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array | StreamedBody;
  timeoutMs: number;
}

export interface HttpResponse {
  status: number;
  /** The HTTP reason phrase: PVE puts the first line of its error message there. */
  reason: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

/** A request that got no (complete) answer. */
export class TransportFailure extends Error {
  /** False when the request certainly never reached the server (refused, TLS failure). */
  readonly mayHaveArrived: boolean;
  readonly timedOut: boolean;
  /** Not worth retrying: the server is not the one we trust. */
  readonly untrusted: boolean;

  constructor(
    message: string,
    flags: { mayHaveArrived: boolean; timedOut?: boolean; untrusted?: boolean },
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = "TransportFailure";
    this.mayHaveArrived = flags.mayHaveArrived;
    this.timedOut = flags.timedOut ?? false;
    this.untrusted = flags.untrusted ?? false;
  }
}

export interface Transport {
  send(request: HttpRequest): Promise<HttpResponse>;
  close(): void;
}

interface PooledSocket {
  socket: net.Socket;
  idleSince: number;
  /** Takes the socket out of the pool if the server closes it while idle. */
  onClose: () => void;
}

export interface Http1TransportOptions {
  /** Idle connections kept for reuse. */
  maxIdle?: number;
  /** An idle connection older than this is closed rather than reused (servers drop them). */
  maxIdleMs?: number;
}

export class Http1Transport implements Transport {
  readonly #host: string;
  readonly #connect: Connector;
  readonly #idle: PooledSocket[] = [];
  readonly #maxIdle: number;
  readonly #maxIdleMs: number;
  #closed = false;

  constructor(baseUrl: string, tlsOptions: TlsOptions, options: Http1TransportOptions = {}) {
    const url = new URL(baseUrl);
    this.#host = url.host;
    this.#connect = createConnector(url, tlsOptions);
    this.#maxIdle = options.maxIdle ?? 8;
    this.#maxIdleMs = options.maxIdleMs ?? 3000;
  }

  async send(request: HttpRequest): Promise<HttpResponse> {
    const deadline = performance.now() + request.timeoutMs;
    let socket: net.Socket;
    try {
      socket = this.#takeIdle() ?? await connectWithin(this.#connect, request.timeoutMs);
    } catch (error) {
      const untrusted = error instanceof UntrustedServerError;
      throw new TransportFailure(
        error instanceof Error ? error.message : String(error),
        { mayHaveArrived: false, untrusted, timedOut: error instanceof TimeoutError },
        error,
      );
    }
    const { response, keepAlive } = await exchange(socket, this.#host, request, deadline);
    if (keepAlive && !this.#closed && this.#idle.length < this.#maxIdle) this.#release(socket);
    else socket.destroy();
    return response;
  }

  close(): void {
    this.#closed = true;
    for (const { socket } of this.#idle.splice(0)) socket.destroy();
  }

  #takeIdle(): net.Socket | undefined {
    const now = performance.now();
    while (this.#idle.length > 0) {
      const pooled = this.#idle.pop()!;
      for (const event of ["close", "error", "end"]) pooled.socket.off(event, pooled.onClose);
      if (now - pooled.idleSince < this.#maxIdleMs && !pooled.socket.destroyed) {
        return pooled.socket;
      }
      pooled.socket.destroy();
    }
    return undefined;
  }

  #release(socket: net.Socket): void {
    const pooled: PooledSocket = {
      socket,
      idleSince: performance.now(),
      onClose: () => {
        const index = this.#idle.indexOf(pooled);
        if (index !== -1) this.#idle.splice(index, 1);
        socket.destroy();
      },
    };
    for (const event of ["close", "error", "end"]) socket.once(event, pooled.onClose);
    this.#idle.push(pooled);
  }
}

class TimeoutError extends Error {}

/** Connects within `ms`; a connection that comes too late is closed, not leaked. */
function connectWithin(connect: Connector, ms: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new TimeoutError(`no connection within ${ms} ms`));
    }, ms);
    connect().then(
      (socket) => {
        clearTimeout(timer);
        if (late) socket.destroy();
        else resolve(socket);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

const encoder = new TextEncoder();
const headerEnd = Buffer.from("\r\n\r\n");

/** Writes one request and reads its response from a connected socket. */
function exchange(
  socket: net.Socket,
  host: string,
  request: HttpRequest,
  deadline: number,
): Promise<{ response: HttpResponse; keepAlive: boolean }> {
  return new Promise((resolve, reject) => {
    let written = false; // every byte went out: the server may have acted on it
    // A body cut short by an early answer leaves the connection unusable for another request.
    let bodyPending = request.body !== undefined && !(request.body instanceof Uint8Array);
    let buffer: Buffer = Buffer.alloc(0);
    let head:
      | { status: number; reason: string; headers: Map<string, string>; bodyStart: number }
      | undefined;
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    const fail = (message: string, timedOut = false, cause?: unknown) => {
      cleanup();
      socket.destroy();
      reject(new TransportFailure(message, { mayHaveArrived: written, timedOut }, cause));
    };
    const onError = (error: Error) => fail(error.message, false, error);
    const onClose = () =>
      fail(written ? "connection closed before an answer" : "connection closed");
    const onData = (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      if (head === undefined) {
        const end = buffer.indexOf(headerEnd);
        if (end === -1) return;
        head = parseHead(buffer.subarray(0, end).toString("latin1"), end + 4);
        if (head === undefined) return fail("malformed HTTP answer");
      }
      const body = readBody(buffer.subarray(head.bodyStart), head.headers);
      if (body === undefined) return; // more to come
      cleanup();
      const connection = (head.headers.get("connection") ?? "").toLowerCase();
      resolve({
        response: {
          status: head.status,
          reason: head.reason,
          headers: Object.fromEntries(head.headers),
          body: body.toString("utf8"),
        },
        keepAlive: connection !== "close" && !bodyPending,
      });
    };
    const timer = setTimeout(
      () => fail(`no answer within ${request.timeoutMs} ms`, true),
      Math.max(0, deadline - performance.now()),
    );
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    let text = `${request.method} ${request.path} HTTP/1.1\r\nhost: ${host}\r\n`;
    for (const [name, value] of Object.entries(request.headers)) text += `${name}: ${value}\r\n`;
    const body = request.body;
    text += `content-length: ${body === undefined ? 0 : body.length}\r\n\r\n`;
    if (body === undefined || body instanceof Uint8Array) {
      const bytes = body === undefined || body.length === 0
        ? encoder.encode(text)
        : Buffer.concat([encoder.encode(text), body]);
      socket.write(bytes, (error) => {
        if (error === undefined || error === null) written = true;
      });
      return;
    }
    socket.write(encoder.encode(text));
    streamBody(socket, body, () => head !== undefined).then(
      (complete) => {
        if (!complete) return;
        written = true;
        bodyPending = false;
      },
      (error) => fail(`sending the request body failed: ${errorText(error)}`, false, error),
    );
  });
}

/**
 * Writes a streamed body as the socket drains, so memory holds a chunk or two, not the body.
 * Stops early (false) when the server has answered already (an error before reading it all).
 */
async function streamBody(
  socket: net.Socket,
  body: StreamedBody,
  answered: () => boolean,
): Promise<boolean> {
  let sent = 0;
  // The last chunk's write callback says when everything was handed to the kernel. (An empty
  // write for that fails with EPERM on Deno's node:tls.)
  let flushed: Promise<void> = Promise.resolve();
  for await (const chunk of body.chunks()) {
    if (socket.destroyed || answered()) return false;
    sent += chunk.length;
    if (sent > body.length) throw new Error(`body is longer than its ${body.length} bytes`);
    flushed = new Promise<void>((resolve, reject) =>
      socket.write(chunk, (error) => error ? reject(error) : resolve())
    );
    flushed.catch(() => {}); // observed below, or by the socket's error handler
    if (socket.writableNeedDrain) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.on("drain", done);
        socket.on("close", done);
      });
    }
  }
  if (sent !== body.length) throw new Error(`body has ${sent} bytes, not ${body.length}`);
  await flushed;
  return true;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function parseHead(text: string, bodyStart: number) {
  const [statusLine, ...lines] = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine ?? "");
  if (m === null) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  return { status: Number(m[1]), reason: m[2] ?? "", headers, bodyStart };
}

/** The whole body once it is there (content-length or chunked), else undefined. */
function readBody(data: Buffer, headers: Map<string, string>): Buffer | undefined {
  if ((headers.get("transfer-encoding") ?? "").toLowerCase().includes("chunked")) {
    const parts: Buffer[] = [];
    let offset = 0;
    for (;;) {
      const lineEnd = data.indexOf("\r\n", offset);
      if (lineEnd === -1) return undefined;
      const size = parseInt(data.subarray(offset, lineEnd).toString("latin1"), 16);
      if (Number.isNaN(size)) return Buffer.alloc(0);
      const start = lineEnd + 2;
      if (size === 0) return data.length >= start + 2 ? Buffer.concat(parts) : undefined;
      if (data.length < start + size + 2) return undefined;
      parts.push(data.subarray(start, start + size));
      offset = start + size + 2;
    }
  }
  const length = Number(headers.get("content-length") ?? 0);
  return data.length >= length ? data.subarray(0, length) : undefined;
}
