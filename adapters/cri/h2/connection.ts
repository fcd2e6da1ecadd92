/**
 * The server side of one HTTP/2 connection (RFC 9113) over a byte stream, for clients that
 * start with the preface (h2c with prior knowledge, as gRPC clients do on unix sockets).
 *
 * It reads frames, keeps the peer's HPACK table, hands each request stream to the application
 * and sends what the application queues, within the peer's flow-control windows and frame size.
 * A peer's protocol error ends its stream (RST_STREAM) or its connection (GOAWAY); nothing a
 * peer sends can throw out of here or touch another connection.
 */
import { errorMessage } from "../../../lib/errors.ts";
import type { Logger } from "../../../lib/log.ts";
import { ConnectionError, ErrorCode, errorCodeName, StreamError } from "./errors.ts";
import { ReceiveWindow, SendWindow } from "./flow_control.ts";
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW_SIZE,
  Flag,
  FRAME_HEADER_LENGTH,
  frameHeader,
  FrameType,
  goawayFrame,
  headerFrames,
  MAX_ALLOWED_FRAME_SIZE,
  MAX_WINDOW_SIZE,
  pingAckFrame,
  readFrameHeader,
  readUint31,
  readUint32,
  rstStreamFrame,
  Setting,
  settingsAckFrame,
  settingsFrame,
  windowUpdateFrame,
} from "./frames.ts";
import type { FrameHeader } from "./frames.ts";
import { type DecodedBlock, HpackDecoder, HpackEncoder } from "./hpack.ts";
import { SocketWriter } from "./socket_writer.ts";
import { type ServerStream, type StreamEnd, type StreamListener, StreamState } from "./stream.ts";
import { concatBytes } from "../../../lib/bytes.ts";

/** The socket a connection runs on: a Deno.Conn, or anything that reads and writes like one. */
export interface ByteSocket {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

/** How a connection hands out streams and how long it waits for a client. */
export interface ConnectionOptions {
  /** A new request stream: returns who hears what arrives on it. Must not throw. */
  onStream(stream: ServerStream): StreamListener;
  log: Logger;
  /** A connection without open streams for this long is closed with GOAWAY; 5 min by default. */
  idleTimeoutMs?: number;
  /** The client must send its preface and SETTINGS within this; 10 s by default. */
  prefaceTimeoutMs?: number;
  /** What one client may do before it is cut off; DEFAULT_CONNECTION_LIMITS by default. */
  limits?: Partial<ConnectionLimits>;
}

/** What one connection's client may do; past each, the connection ends with ENHANCE_YOUR_CALM. */
export interface ConnectionLimits {
  /** Streams open at once: SETTINGS_MAX_CONCURRENT_STREAMS, advertised; more are refused. */
  maxConcurrentStreams: number;
  /**
   * Streams the client resets, or opens past the concurrency limit, per second: each costs a
   * stream's setup, and a loop of them is the rapid-reset attack (CVE-2023-44487).
   */
  maxResetsPerSecond: number;
  /**
   * Frames per second that ask work of the server and carry nothing for a call: PING,
   * SETTINGS, PRIORITY, empty DATA without END_STREAM, unknown types (floods, CVE-2019-9512,
   * -9515, -9518).
   */
  maxControlFramesPerSecond: number;
  /** CONTINUATION frames in one header block (CONTINUATION floods, CVE-2024-27316). */
  maxContinuationFrames: number;
  /**
   * How long a client may take to send a whole request (to its END_STREAM): a stream left
   * half-sent is reset with CANCEL, so it cannot hold a call and keep its connection busy.
   */
  requestTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConcurrentStreams: 1000,
  maxResetsPerSecond: 200,
  // grpc-go sends a BDP ping for at most every DATA frame it receives: a 4 MB listing, ~250.
  maxControlFramesPerSecond: 5000,
  maxContinuationFrames: 32,
  // A CRI request is one message; the largest (16 MiB) takes milliseconds on a unix socket.
  requestTimeoutMs: 60_000,
};

/** What we announce in our SETTINGS, and hold the peer to. */
export const LOCAL_SETTINGS = {
  /** Each stream's receive window: requests are small, but nothing needs to wait for updates. */
  initialWindowSize: 1024 * 1024,
  maxHeaderListSize: 64 * 1024,
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
} as const;
/** The connection's receive window, raised from 65,535 by our first WINDOW_UPDATE. */
const CONNECTION_WINDOW = 4 * 1024 * 1024;
// A compressed header block is rarely larger than its decoded list; twice that is an attack.
const MAX_HEADER_BLOCK_BYTES = 2 * LOCAL_SETTINGS.maxHeaderListSize;
// DATA is produced only while less than this waits for the socket: a slow reader holds back
// the handlers' output in their streams' queues, not in one ever-growing socket queue.
const HIGH_WATER_BYTES = 256 * 1024;
// Our DATA frames stay below this even when the peer allows 16 MiB frames, so one frame never
// outweighs the limits above and below.
const MAX_DATA_FRAME_BYTES = 64 * 1024;
// Control frames we answer (PING, SETTINGS, RST_STREAM) cannot pile up beyond this.
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;
// Enough for a CRI request (they are small); it doubles when a frame needs more. An idle
// connection holds 4 KiB for reading, not 64 (h2.conn_memory_kb: 91 KB before).
const READ_BUFFER_BYTES = 4 * 1024;
const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_PREFACE_TIMEOUT_MS = 10_000;
// How long queued output (GOAWAY, last trailers) may take to leave when the connection ends.
const GRACEFUL_FLUSH_MS = 1_000;
const ERROR_FLUSH_MS = 200;

const EMPTY = new Uint8Array(0);

type Phase = "preface" | "settings" | "open" | "closed";

/** How a stream left the connection, which decides what becomes of its late frames. */
type ClosedHow = "reset-by-us" | "reset-by-peer" | "ended";
// Late frames come within a round trip; a client opening thousands of streams a second
// still finds the last thousand here.
const CLOSED_STREAMS_KEPT = 1024;

interface HeaderBlock {
  streamId: number;
  endStream: boolean;
  badPriority: boolean;
  fragments: Uint8Array[];
  length: number;
  /** CONTINUATION frames so far. */
  continuations: number;
}

let connectionCount = 0;

/** One client connection; it starts reading at once and ends by itself. */
export class Http2Connection {
  /** Resolves once the socket is closed and every stream's listener has been told; never rejects. */
  readonly closed: Promise<void>;
  readonly #socket: ByteSocket;
  readonly #options: ConnectionOptions;
  readonly #limits: ConnectionLimits;
  /** This second's counts against the per-second limits. */
  #rate = { since: 0, resets: 0, control: 0 };
  readonly #log: Logger;
  readonly #writer: SocketWriter;
  readonly #decoder = new HpackDecoder();
  readonly #encoder = new HpackEncoder();
  readonly #streams = new Map<number, StreamState>();
  /** How recently closed streams closed, oldest first, for frames that arrive after. */
  readonly #closedStreams = new Map<number, ClosedHow>();
  /** Closed streams at or below this id may have been forgotten. */
  #forgottenBelow = 0;
  // Streams with queued output, in round-robin order.
  readonly #ready = new Set<StreamState>();
  readonly #connectionSend = new SendWindow(DEFAULT_WINDOW_SIZE);
  readonly #connectionReceive = new ReceiveWindow(CONNECTION_WINDOW, DEFAULT_WINDOW_SIZE);
  #resolveClosed: () => void = () => {};
  #phase: Phase = "preface";
  #prefaceMatched = 0;
  #headerBlock: HeaderBlock | undefined;
  /** Highest stream id the peer has used. */
  #lastStreamId = 0;
  /** Set once we sent GOAWAY: streams above it are ignored. */
  #goawayLastId: number | undefined;
  #goawayReceived = false;
  #closing = false;
  #pumping = false;
  #pumpAgain = false;
  // Peer settings.
  #peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  #peerInitialWindow = DEFAULT_WINDOW_SIZE;
  #prefaceTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Looks for requests sent too slowly, while any stream's request is incomplete. */
  #requestSweep: ReturnType<typeof setTimeout> | undefined;
  #idleSince = performance.now();

  constructor(socket: ByteSocket, options: ConnectionOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#limits = { ...DEFAULT_CONNECTION_LIMITS, ...options.limits };
    this.#log = options.log.with({ connection: ++connectionCount });
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#writer = new SocketWriter(socket, {
      onDrain: () => this.#pump(),
      onError: (error) => {
        this.#log.debug("HTTP/2 connection lost while writing", { error: errorMessage(error) });
        void this.#close(0);
      },
    });
    // The server preface may go out before the client's arrives (RFC 9113 §3.4).
    this.#writer.push(settingsFrame([
      [Setting.MAX_CONCURRENT_STREAMS, this.#limits.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, LOCAL_SETTINGS.initialWindowSize],
      [Setting.MAX_HEADER_LIST_SIZE, LOCAL_SETTINGS.maxHeaderListSize],
    ]));
    this.#writer.push(windowUpdateFrame(0, this.#connectionReceive.release(0)));
    this.#prefaceTimer = setTimeout(() => {
      this.#fail(new ConnectionError(ErrorCode.PROTOCOL_ERROR, "No client preface in time"));
    }, options.prefaceTimeoutMs ?? DEFAULT_PREFACE_TIMEOUT_MS);
    void this.#readLoop();
  }

  /** Streams not yet done. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /** Graceful close: GOAWAY, no new streams, and the connection ends when its streams are done. */
  shutdown(): void {
    if (this.#closing) return;
    this.#sendGoaway(ErrorCode.NO_ERROR, "server shutting down");
    this.#finishIfDrained();
  }

  /** Closes now: open streams are lost; queued output gets `flushMs` to leave. */
  destroy(flushMs = ERROR_FLUSH_MS): Promise<void> {
    if (!this.#closing) this.#sendGoaway(ErrorCode.NO_ERROR, "server closing");
    return this.#close(flushMs);
  }

  // ---- reading ----

  async #readLoop(): Promise<void> {
    let buffer: Uint8Array = new Uint8Array(READ_BUFFER_BYTES);
    let start = 0;
    let end = 0;
    try {
      while (!this.#closing) {
        const read = await this.#socket.read(buffer.subarray(end));
        if (read === null) {
          this.#log.debug("HTTP/2 client closed its side", { open_streams: this.#streams.size });
          return void this.#close(ERROR_FLUSH_MS);
        }
        end += read;
        start = this.#process(buffer, start, end);
        if (this.#closing) return;
        // Keep the unread partial frame at the front; a full buffer doubles (below).
        if (start === end) {
          start = end = 0;
        } else if (start > 0) {
          buffer.copyWithin(0, start, end);
          end -= start;
          start = 0;
        }
        if (end === buffer.length) buffer = grow(buffer);
      }
    } catch (error) {
      if (!this.#closing) {
        this.#log.debug("HTTP/2 connection lost while reading", { error: errorMessage(error) });
        void this.#close(0);
      }
    }
  }

  /** Handles every complete frame in buffer[start, end); returns where the unread rest starts. */
  #process(buffer: Uint8Array, start: number, end: number): number {
    let position = start;
    try {
      if (this.#phase === "preface") {
        while (position < end && this.#prefaceMatched < CLIENT_PREFACE.length) {
          if (buffer[position] !== CLIENT_PREFACE[this.#prefaceMatched]) {
            throw new ConnectionError(
              ErrorCode.PROTOCOL_ERROR,
              "Not an HTTP/2 client preface: pve-cri speaks gRPC (h2c with prior knowledge)",
            );
          }
          position++;
          this.#prefaceMatched++;
        }
        if (this.#prefaceMatched < CLIENT_PREFACE.length) return position;
        this.#phase = "settings";
      }
      while (end - position >= FRAME_HEADER_LENGTH && !this.#closing) {
        const header = readFrameHeader(buffer, position);
        if (header.length > LOCAL_SETTINGS.maxFrameSize) {
          throw new ConnectionError(
            ErrorCode.FRAME_SIZE_ERROR,
            `Frame of ${header.length} bytes exceeds SETTINGS_MAX_FRAME_SIZE`,
          );
        }
        const frameEnd = position + FRAME_HEADER_LENGTH + header.length;
        if (frameEnd > end) break;
        const payload = buffer.subarray(position + FRAME_HEADER_LENGTH, frameEnd);
        position = frameEnd;
        try {
          this.#onFrame(header, payload);
        } catch (error) {
          if (!(error instanceof StreamError)) throw error;
          this.#log.debug("HTTP/2 stream error", {
            stream_id: error.streamId,
            code: errorCodeName(error.h2Code),
            error: error.message,
          });
          this.#resetStream(error.streamId, error.h2Code);
        }
      }
    } catch (error) {
      this.#fail(
        error instanceof ConnectionError
          ? error
          : new ConnectionError(ErrorCode.INTERNAL_ERROR, errorMessage(error)),
        error instanceof ConnectionError ? undefined : error,
      );
      return end;
    }
    return position;
  }

  #onFrame(header: FrameHeader, payload: Uint8Array): void {
    if (this.#phase === "settings") {
      if (header.type !== FrameType.SETTINGS || (header.flags & Flag.ACK) !== 0) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "First frame is not SETTINGS");
      }
      this.#phase = "open";
      clearTimeout(this.#prefaceTimer);
      this.#armIdleTimer();
    }
    if (this.#headerBlock !== undefined && header.type !== FrameType.CONTINUATION) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Header block interrupted");
    }
    if (costsWithoutCarrying(header)) this.#count("control");
    switch (header.type) {
      case FrameType.DATA:
        return this.#onData(header, payload);
      case FrameType.HEADERS:
        return this.#onHeaders(header, payload);
      case FrameType.PRIORITY:
        return this.#onPriority(header, payload);
      case FrameType.RST_STREAM:
        return this.#onRstStream(header, payload);
      case FrameType.SETTINGS:
        return this.#onSettings(header, payload);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Clients cannot push");
      case FrameType.PING:
        return this.#onPing(header, payload);
      case FrameType.GOAWAY:
        return this.#onGoaway(header, payload);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(header, payload);
      case FrameType.CONTINUATION:
        return this.#onContinuation(header, payload);
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  #onData(header: FrameHeader, payload: Uint8Array): void {
    const id = header.streamId;
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    const data = unpadded(header, payload);
    // Flow control counts the whole frame, whatever becomes of it.
    if (!this.#connectionReceive.receive(header.length)) {
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    }
    const connectionIncrement = this.#connectionReceive.release(header.length);
    if (connectionIncrement > 0) this.#writer.push(windowUpdateFrame(0, connectionIncrement));
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      if (id > this.#lastStreamId) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      }
      return this.#onClosedStream(id, "DATA");
    }
    if (stream.remoteEnded) {
      throw new StreamError(id, ErrorCode.STREAM_CLOSED, "DATA after END_STREAM");
    }
    if (!stream.receiveWindow.receive(header.length)) {
      throw new StreamError(id, ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the stream window");
    }
    const end = (header.flags & Flag.END_STREAM) !== 0;
    stream.receivedBytes += data.length;
    checkContentLength(stream, end);
    if (stream.localEnded) {
      // Answered already: what the peer still sends is checked and dropped until its end,
      // and no more window is given for it (the peer stops at most a window further on).
      if (end) this.#removeStream(stream, { kind: "done" });
      return;
    }
    if (end) {
      stream.remoteEnded = true;
    } else {
      const increment = stream.receiveWindow.release(header.length);
      if (increment > 0) this.#writer.push(windowUpdateFrame(id, increment));
    }
    // The read buffer is reused: the listener gets its own copy.
    this.#deliver(stream, data.slice(), end);
  }

  /**
   * A frame for a stream that is no longer open (RFC 9113 §5.1): ignored after our
   * RST_STREAM (the peer may have sent it before ours arrived), STREAM_CLOSED after the
   * peer's RST_STREAM or both END_STREAMs, and for an id the peer skipped (implicitly closed).
   */
  #onClosedStream(id: number, frame: string): void {
    const how = this.#closedStreams.get(id);
    if (how === "reset-by-us") return;
    if (how === undefined && id <= this.#forgottenBelow) return; // too long ago to tell
    throw new StreamError(
      id,
      ErrorCode.STREAM_CLOSED,
      `${frame} on closed stream ${id} (${how ?? "never opened"})`,
    );
  }

  #onHeaders(header: FrameHeader, payload: Uint8Array): void {
    const id = header.streamId;
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    let fragment = unpadded(header, payload);
    let badPriority = false;
    if (header.flags & Flag.PRIORITY) {
      if (fragment.length < 5) {
        throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for priority");
      }
      badPriority = readUint31(fragment, 0) === id;
      fragment = fragment.subarray(5);
    }
    this.#headerBlock = {
      streamId: id,
      endStream: (header.flags & Flag.END_STREAM) !== 0,
      badPriority,
      fragments: [fragment.slice()],
      length: fragment.length,
      continuations: 0,
    };
    this.#checkHeaderBlockSize(this.#headerBlock);
    if (header.flags & Flag.END_HEADERS) this.#onHeaderBlock();
  }

  #onContinuation(header: FrameHeader, payload: Uint8Array): void {
    const block = this.#headerBlock;
    if (block === undefined || block.streamId !== header.streamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block");
    }
    if (++block.continuations > this.#limits.maxContinuationFrames) {
      throw new ConnectionError(
        ErrorCode.ENHANCE_YOUR_CALM,
        `More than ${this.#limits.maxContinuationFrames} CONTINUATION frames in one header block`,
      );
    }
    block.fragments.push(payload.slice());
    block.length += payload.length;
    this.#checkHeaderBlockSize(block);
    if (header.flags & Flag.END_HEADERS) this.#onHeaderBlock();
  }

  #checkHeaderBlockSize(block: HeaderBlock): void {
    if (block.length > MAX_HEADER_BLOCK_BYTES) {
      throw new ConnectionError(
        ErrorCode.ENHANCE_YOUR_CALM,
        `Header block exceeds ${MAX_HEADER_BLOCK_BYTES} bytes`,
      );
    }
  }

  /** A complete header block: decoded always (the HPACK table must stay in step), then used. */
  #onHeaderBlock(): void {
    const block = this.#headerBlock!;
    this.#headerBlock = undefined;
    const decoded = this.#decoder.decode(
      block.fragments.length === 1
        ? block.fragments[0]!
        : concatBytes(block.fragments, block.length),
      LOCAL_SETTINGS.maxHeaderListSize,
    );
    const id = block.streamId;
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      // Trailers: gRPC clients send none, but HTTP/2 allows them once, ending the stream.
      if (existing.remoteEnded) {
        throw new StreamError(id, ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM");
      }
      if (!block.endStream) {
        throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, "Trailers without END_STREAM");
      }
      if (decoded.headers.some(([name]) => name.startsWith(":"))) {
        throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, "Pseudo-header field in trailers");
      }
      checkContentLength(existing, true);
      existing.remoteEnded = true;
      if (existing.localEnded) return this.#removeStream(existing, { kind: "done" });
      this.#deliver(existing, EMPTY, true);
      return;
    }
    if (id <= this.#lastStreamId) {
      const how = this.#closedStreams.get(id);
      if (how === undefined && id > this.#forgottenBelow) {
        // Not a stream we know: a new one, below one the peer opened before (§5.1.1).
        throw new ConnectionError(
          ErrorCode.PROTOCOL_ERROR,
          `Stream id ${id} is not above ${this.#lastStreamId}, the last one opened`,
        );
      }
      return this.#onClosedStream(id, "HEADERS");
    }
    if (id % 2 === 0) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `Client stream id ${id} is even`);
    }
    this.#lastStreamId = id;
    if (block.badPriority) {
      throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, "Stream depends on itself");
    }
    if (this.#goawayLastId !== undefined) return; // after our GOAWAY: the client retries elsewhere
    if (this.#goawayReceived || this.#streams.size >= this.#limits.maxConcurrentStreams) {
      this.#count("resets");
      this.#rememberClosed(id, "reset-by-us");
      this.#pushControl(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    this.#openStream(id, block.endStream, decoded);
  }

  #openStream(
    id: number,
    endStream: boolean,
    decoded: DecodedBlock,
  ): void {
    const stream = new StreamState({
      id,
      sendWindow: this.#peerInitialWindow,
      receiveWindow: LOCAL_SETTINGS.initialWindowSize,
    });
    stream.remoteEnded = endStream;
    if (!endStream) {
      stream.openedAt = performance.now();
      this.#armRequestSweep();
    }
    const length = decoded.headers.find(([name]) => name === "content-length")?.[1];
    if (length !== undefined) {
      if (!/^\d{1,15}$/.test(length)) {
        throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, `Malformed content-length "${length}"`);
      }
      stream.contentLength = Number(length);
      checkContentLength(stream, endStream);
    }
    this.#streams.set(id, stream);
    let listener: StreamListener;
    try {
      listener = this.#options.onStream(this.#facade(stream, decoded));
    } catch (error) {
      this.#log.error("HTTP/2 stream handler threw", { stream_id: id, error: errorMessage(error) });
      this.#resetStream(id, ErrorCode.INTERNAL_ERROR);
      return;
    }
    // The application may have answered (and so closed the stream) from inside onStream.
    // Its listener is not kept then: nothing more reaches it.
    if (stream.closedWith !== undefined) {
      return this.#notifyClose(stream, stream.closedWith, listener);
    }
    stream.listener = listener;
    if (endStream) this.#deliver(stream, EMPTY, true);
  }

  /** What the application holds for a stream; calls after the stream closed do nothing. */
  #facade(
    stream: StreamState,
    decoded: DecodedBlock,
  ): ServerStream {
    const open = () => this.#streams.get(stream.id) === stream && !stream.localEnding;
    return {
      id: stream.id,
      headers: decoded.headers,
      headersTooLarge: decoded.tooLarge,
      get queuedBytes() {
        return stream.queuedBytes;
      },
      respond: (fields, options = {}) => {
        if (!open()) return;
        const endStream = options.endStream ?? false;
        stream.localEnding = endStream;
        this.#enqueue(stream, { kind: "headers", fields, endStream });
      },
      write: (data) => {
        if (!open() || data.length === 0) return;
        stream.queuedBytes += data.length;
        this.#enqueue(stream, { kind: "data", bytes: data, offset: 0 });
      },
      end: (trailers) => {
        if (!open()) return;
        stream.localEnding = true;
        this.#enqueue(stream, { kind: "headers", fields: trailers, endStream: true });
      },
      reset: (code) => {
        if (this.#streams.get(stream.id) === stream) this.#resetStream(stream.id, code);
      },
    };
  }

  #onPriority(header: FrameHeader, payload: Uint8Array): void {
    if (header.streamId === 0) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
    }
    if (header.length !== 5) {
      throw new StreamError(header.streamId, ErrorCode.FRAME_SIZE_ERROR, "PRIORITY is not 5 bytes");
    }
    if (readUint31(payload, 0) === header.streamId) {
      // A stream error; on a stream not yet opened, of the whole connection (RFC 9113 §5.3.1
      // forbids the dependency; RST_STREAM may not name an idle stream).
      if (header.streamId > this.#lastStreamId) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY: a stream depends on itself");
      }
      throw new StreamError(header.streamId, ErrorCode.PROTOCOL_ERROR, "Stream depends on itself");
    }
    // Priorities are advisory; every stream gets an equal turn here.
  }

  #onRstStream(header: FrameHeader, payload: Uint8Array): void {
    const id = header.streamId;
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (header.length !== 4) {
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM is not 4 bytes");
    }
    if (id > this.#lastStreamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    this.#count("resets");
    const code = readUint32(payload, 0) as ErrorCode;
    this.#removeStream(stream, { kind: "reset", code, local: false });
  }

  #onSettings(header: FrameHeader, payload: Uint8Array): void {
    if (header.streamId !== 0) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    }
    if (header.flags & Flag.ACK) {
      if (header.length !== 0) {
        throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      }
      return;
    }
    if (header.length % 6 !== 0) {
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6");
    }
    for (let offset = 0; offset < payload.length; offset += 6) {
      const id = (payload[offset]! << 8) | payload[offset + 1]!;
      const value = readUint32(payload, offset + 2);
      this.#applySetting(id, value);
    }
    this.#pushControl(settingsAckFrame());
    this.#pump(); // a larger window may let queued DATA go
  }

  #applySetting(id: number, value: number): void {
    switch (id) {
      case Setting.HEADER_TABLE_SIZE:
        return this.#encoder.setPeerTableSize(value);
      case Setting.ENABLE_PUSH:
        if (value > 1) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH is not 0 or 1");
        }
        return; // we never push
      case Setting.INITIAL_WINDOW_SIZE: {
        if (value > MAX_WINDOW_SIZE) {
          throw new ConnectionError(
            ErrorCode.FLOW_CONTROL_ERROR,
            "SETTINGS_INITIAL_WINDOW_SIZE too large",
          );
        }
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const stream of this.#streams.values()) {
          if (!stream.sendWindow.grow(delta)) {
            throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "Stream window overflows");
          }
        }
        return;
      }
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_ALLOWED_FRAME_SIZE) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
        }
        this.#peerMaxFrameSize = value;
        return;
      default:
        // MAX_CONCURRENT_STREAMS limits streams we would open (none); MAX_HEADER_LIST_SIZE is
        // advisory and our header lists are small; unknown settings are ignored.
        return;
    }
  }

  #onPing(header: FrameHeader, payload: Uint8Array): void {
    if (header.streamId !== 0) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    }
    if (header.length !== 8) {
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING is not 8 bytes");
    }
    if (header.flags & Flag.ACK) return; // we send no pings
    this.#pushControl(pingAckFrame(payload.slice()));
  }

  #onGoaway(header: FrameHeader, payload: Uint8Array): void {
    if (header.streamId !== 0) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
    }
    if (header.length < 8) {
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY too short");
    }
    const code = readUint32(payload, 4);
    this.#goawayReceived = true;
    this.#log.debug("HTTP/2 client going away", {
      code: errorCodeName(code),
      open_streams: this.#streams.size,
    });
    this.#finishIfDrained();
  }

  #onWindowUpdate(header: FrameHeader, payload: Uint8Array): void {
    if (header.length !== 4) {
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE is not 4 bytes");
    }
    const increment = readUint31(payload, 0);
    const id = header.streamId;
    if (id === 0) {
      if (increment === 0) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      }
      if (!this.#connectionSend.grow(increment)) {
        throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "Connection window overflows");
      }
    } else {
      if (id > this.#lastStreamId) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      }
      if (increment === 0) {
        throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      }
      const stream = this.#streams.get(id);
      if (stream === undefined) return; // allowed on a stream that just closed
      if (!stream.sendWindow.grow(increment)) {
        throw new StreamError(id, ErrorCode.FLOW_CONTROL_ERROR, "Stream window overflows");
      }
    }
    this.#pump();
  }

  // ---- sending ----

  #enqueue(stream: StreamState, item: StreamState["queue"][number]): void {
    stream.queue.push(item);
    this.#ready.add(stream);
    this.#pump();
  }

  /** Moves queued output to the socket, round-robin a frame per stream, within the windows. */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        let progressed = true;
        while (progressed && this.#ready.size > 0 && !this.#closing) {
          progressed = false;
          for (const stream of this.#ready) {
            if (this.#writer.backlog >= HIGH_WATER_BYTES) return;
            if (this.#emit(stream)) progressed = true;
          }
        }
      } while (this.#pumpAgain && !this.#closing);
    } finally {
      this.#pumping = false;
    }
  }

  /** Sends the stream's leading header blocks and at most one DATA frame; true if it sent any. */
  #emit(stream: StreamState): boolean {
    let sent = false;
    while (stream.queue.length > 0) {
      const item = stream.queue[0]!;
      if (item.kind === "headers") {
        stream.queue.shift();
        const block = this.#encoder.encode(item.fields);
        const frames = headerFrames(stream.id, block, {
          endStream: item.endStream,
          maxFrameSize: this.#peerMaxFrameSize,
        });
        for (const frame of frames) this.#writer.push(frame);
        sent = true;
        if (item.endStream) {
          this.#localEnded(stream);
          return true;
        }
        continue;
      }
      const remaining = item.bytes.length - item.offset;
      const size = Math.min(
        remaining,
        this.#peerMaxFrameSize,
        MAX_DATA_FRAME_BYTES,
        this.#connectionSend.available,
        stream.sendWindow.available,
      );
      if (size <= 0) break;
      this.#writer.push(frameHeader(FrameType.DATA, 0, stream.id, size));
      this.#writer.push(item.bytes.subarray(item.offset, item.offset + size));
      item.offset += size;
      stream.queuedBytes -= size;
      this.#connectionSend.consume(size);
      stream.sendWindow.consume(size);
      if (item.offset === item.bytes.length) stream.queue.shift();
      sent = true;
      break; // one DATA frame per turn keeps streams fair
    }
    if (stream.queue.length === 0) this.#ready.delete(stream);
    return sent;
  }

  /**
   * Our END_STREAM went out: the stream is done for the application; for the connection once
   * the peer ends its side too. Until then it is half-closed (local): the peer's frames are
   * still checked and counted against the concurrency limit, rather than met by no state.
   */
  #localEnded(stream: StreamState): void {
    if (stream.remoteEnded) return this.#removeStream(stream, { kind: "done" });
    stream.localEnded = true;
    this.#ready.delete(stream);
    stream.queue.length = 0;
    stream.queuedBytes = 0;
    if (stream.listener !== undefined) this.#notifyClose(stream, { kind: "done" });
    stream.listener = undefined;
    stream.closedWith = { kind: "done" };
  }

  #resetStream(id: number, code: ErrorCode): void {
    this.#pushControl(rstStreamFrame(id, code));
    const stream = this.#streams.get(id);
    if (stream !== undefined) this.#removeStream(stream, { kind: "reset", code, local: true });
    // Frames the peer sent before our RST_STREAM reached it are ignored, not answered again.
    else this.#rememberClosed(id, "reset-by-us");
  }

  #removeStream(stream: StreamState, end: StreamEnd): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    this.#rememberClosed(
      stream.id,
      end.kind === "reset" ? (end.local ? "reset-by-us" : "reset-by-peer") : "ended",
    );
    this.#ready.delete(stream);
    stream.queue.length = 0;
    stream.queuedBytes = 0;
    // A half-closed (local) stream's application heard "done" when its answer went out.
    if (!stream.localEnded) {
      stream.closedWith = end;
      if (stream.listener !== undefined) this.#notifyClose(stream, end);
    }
    if (this.#streams.size === 0) {
      this.#armIdleTimer();
      this.#finishIfDrained();
    }
  }

  /** Counts one against this second's limit; past it, the connection ends. */
  #count(kind: "resets" | "control"): void {
    const now = performance.now();
    if (now - this.#rate.since >= 1000) this.#rate = { since: now, resets: 0, control: 0 };
    const limit = kind === "resets"
      ? this.#limits.maxResetsPerSecond
      : this.#limits.maxControlFramesPerSecond;
    if (++this.#rate[kind] <= limit) return;
    throw new ConnectionError(
      ErrorCode.ENHANCE_YOUR_CALM,
      kind === "resets"
        ? `More than ${limit} streams reset or refused in a second`
        : `More than ${limit} control frames in a second`,
    );
  }

  /** Remembers how a stream closed; past CLOSED_STREAMS_KEPT, the oldest is forgotten. */
  #rememberClosed(id: number, how: ClosedHow): void {
    this.#closedStreams.set(id, how);
    if (this.#closedStreams.size <= CLOSED_STREAMS_KEPT) return;
    const [oldest] = this.#closedStreams.keys();
    this.#closedStreams.delete(oldest!);
    this.#forgottenBelow = Math.max(this.#forgottenBelow, oldest!);
  }

  #notifyClose(stream: StreamState, end: StreamEnd, listener = stream.listener): void {
    try {
      listener?.onClose(end);
    } catch (error) {
      this.#log.error("HTTP/2 stream listener threw", {
        stream_id: stream.id,
        error: errorMessage(error),
      });
    }
  }

  #deliver(stream: StreamState, chunk: Uint8Array, end: boolean): void {
    if (stream.listener === undefined || this.#streams.get(stream.id) !== stream) return;
    try {
      stream.listener.onData(chunk, end);
    } catch (error) {
      this.#log.error("HTTP/2 stream listener threw", {
        stream_id: stream.id,
        error: errorMessage(error),
      });
      this.#resetStream(stream.id, ErrorCode.INTERNAL_ERROR);
    }
  }

  /** Queues a frame we owe the peer; a peer that makes us owe too much without reading is cut off. */
  #pushControl(frame: Uint8Array): void {
    this.#writer.push(frame);
    if (this.#writer.backlog > MAX_BACKLOG_BYTES) {
      this.#fail(new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "Peer is not reading"));
    }
  }

  // ---- ending ----

  #sendGoaway(code: ErrorCode, debug: string): void {
    if (this.#goawayLastId !== undefined && code === ErrorCode.NO_ERROR) return;
    // A later GOAWAY (an error after a graceful one) may not raise the last stream id.
    this.#goawayLastId ??= this.#lastStreamId;
    this.#writer.push(goawayFrame(this.#goawayLastId, code, debug));
  }

  /** After a GOAWAY either way, the connection ends once no stream is left. */
  #finishIfDrained(): void {
    const goingAway = this.#goawayLastId !== undefined || this.#goawayReceived;
    if (goingAway && this.#streams.size === 0 && !this.#closing) {
      void this.#close(GRACEFUL_FLUSH_MS);
    }
  }

  /** A connection error: GOAWAY with its code, then close. */
  #fail(error: ConnectionError, cause?: unknown): void {
    if (this.#closing) return;
    const fields = { code: errorCodeName(error.h2Code), error: error.message };
    if (cause === undefined) this.#log.warn("HTTP/2 connection error: closing it", fields);
    else {
      this.#log.error("HTTP/2 connection failed: closing it", {
        ...fields,
        stack: cause instanceof Error ? cause.stack : undefined,
      });
    }
    this.#sendGoaway(error.h2Code, error.message);
    void this.#close(ERROR_FLUSH_MS);
  }

  async #close(flushMs: number): Promise<void> {
    if (this.#closing) return this.closed;
    this.#closing = true;
    this.#phase = "closed";
    clearTimeout(this.#prefaceTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#requestSweep);
    for (const stream of [...this.#streams.values()]) this.#removeStream(stream, { kind: "lost" });
    this.#ready.clear();
    if (flushMs > 0 && !this.#writer.closed) await within(this.#writer.drained(), flushMs);
    this.#writer.close();
    try {
      this.#socket.close();
    } catch {
      // already closed by the peer's side
    }
    this.#resolveClosed();
    return this.closed;
  }

  /**
   * Resets streams whose request is still incomplete after requestTimeoutMs. One timer per
   * connection, running only while some request is incomplete: most calls send their whole
   * request at once and never meet it.
   */
  #armRequestSweep(): void {
    if (this.#requestSweep !== undefined || this.#closing) return;
    const timeoutMs = this.#limits.requestTimeoutMs;
    this.#requestSweep = setTimeout(() => {
      this.#requestSweep = undefined;
      const now = performance.now();
      let incomplete = false;
      for (const stream of [...this.#streams.values()]) {
        if (stream.remoteEnded) continue;
        if (now - stream.openedAt < timeoutMs) {
          incomplete = true;
          continue;
        }
        this.#log.debug("HTTP/2 request not sent in time: resetting its stream", {
          stream_id: stream.id,
          timeout_ms: timeoutMs,
        });
        this.#resetStream(stream.id, ErrorCode.CANCEL);
      }
      if (incomplete) this.#armRequestSweep();
    }, Math.max(10, timeoutMs / 4));
  }

  /**
   * Starts the idle clock (no stream open). One timer per connection, re-armed only when it
   * fires: the hot path (a stream opening and closing per call) only records a timestamp.
   */
  #armIdleTimer(): void {
    if (this.#phase !== "open") return;
    this.#idleSince = performance.now();
    if (this.#idleTimer !== undefined) return;
    const idleMs = this.#options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    const check = () => {
      this.#idleTimer = undefined;
      if (this.#closing || this.#streams.size > 0) return; // re-armed when the last one closes
      const left = idleMs - (performance.now() - this.#idleSince);
      if (left > 0) {
        this.#idleTimer = setTimeout(check, left);
        return;
      }
      this.#log.debug("HTTP/2 connection idle: closing it", { idle_ms: idleMs });
      this.shutdown();
    };
    this.#idleTimer = setTimeout(check, idleMs);
  }
}

/** A frame that makes the server work and carries nothing for a call. */
function costsWithoutCarrying(header: FrameHeader): boolean {
  switch (header.type) {
    case FrameType.PING:
    case FrameType.SETTINGS:
      return (header.flags & Flag.ACK) === 0;
    case FrameType.PRIORITY:
      return true;
    case FrameType.DATA:
      return header.length === 0 && (header.flags & Flag.END_STREAM) === 0;
    case FrameType.HEADERS:
    case FrameType.RST_STREAM:
    case FrameType.GOAWAY:
    case FrameType.WINDOW_UPDATE:
    case FrameType.CONTINUATION:
    case FrameType.PUSH_PROMISE:
      return false;
    default:
      return true; // unknown types are ignored, but each is read
  }
}

/** DATA beyond the request's content-length, or short of it at its end (RFC 9113 §8.1.1). */
function checkContentLength(stream: StreamState, end: boolean): void {
  const expected = stream.contentLength;
  if (expected === undefined) return;
  if (stream.receivedBytes > expected || (end && stream.receivedBytes !== expected)) {
    throw new StreamError(
      stream.id,
      ErrorCode.PROTOCOL_ERROR,
      `content-length ${expected}, DATA ${stream.receivedBytes} bytes`,
    );
  }
}

/** The payload without its padding (RFC 9113 §6.1). */
function unpadded(header: FrameHeader, payload: Uint8Array): Uint8Array {
  if ((header.flags & Flag.PADDED) === 0) return payload;
  if (payload.length < 1) {
    throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "Padded frame without a pad length");
  }
  const padLength = payload[0]!;
  if (padLength >= payload.length) {
    throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Padding exceeds the frame");
  }
  return payload.subarray(1, payload.length - padLength);
}

function grow(buffer: Uint8Array): Uint8Array {
  const bigger = new Uint8Array(buffer.length * 2);
  bigger.set(buffer);
  return bigger;
}

/** Waits for `promise` at most `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise, new Promise((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}
