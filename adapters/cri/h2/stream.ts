/**
 * One HTTP/2 stream on the server side: what the application sees (`ServerStream`, with a
 * `StreamListener` for what arrives) and what the connection keeps for it (`StreamState`: its
 * windows, whether each side has ended, and the output waiting for flow control).
 */
import type { ErrorCode } from "./errors.ts";
import { ReceiveWindow, SendWindow } from "./flow_control.ts";
import type { HeaderField } from "./hpack.ts";

/** How a stream ended. */
export type StreamEnd =
  /** Both sides ended it (or we ended ours and reset the rest with NO_ERROR). */
  | { kind: "done" }
  /** Reset by the peer (`local` false) or by us; before `done`, so the call did not finish. */
  | { kind: "reset"; code: ErrorCode; local: boolean }
  /** The connection closed before the stream was done. */
  | { kind: "lost" };

/** What the application is told about a stream, in order; each callback must not throw. */
export interface StreamListener {
  /** A DATA payload (padding removed, may be empty); `end`: the peer will send no more. */
  onData(chunk: Uint8Array, end: boolean): void;
  /** Called once, last: the stream is gone from the connection and its output dropped. */
  onClose(end: StreamEnd): void;
}

/** A request stream as the application handles it. */
export interface ServerStream {
  readonly id: number;
  /** The request's header fields, pseudo-headers included, as received. */
  readonly headers: readonly HeaderField[];
  /** The header list exceeded our SETTINGS_MAX_HEADER_LIST_SIZE: `headers` is incomplete. */
  readonly headersTooLarge: boolean;
  /** DATA bytes queued for this stream and not yet handed to the socket. */
  readonly queuedBytes: number;
  /** Sends response headers; `endStream` makes them a complete (trailers-only) response. */
  respond(headers: readonly HeaderField[], options?: { endStream?: boolean }): void;
  /** Sends DATA as flow control allows. */
  write(data: Uint8Array): void;
  /** Sends trailers after all written DATA, ending our side of the stream. */
  end(trailers: readonly HeaderField[]): void;
  /** Resets the stream now (RST_STREAM), dropping queued output. */
  reset(code: ErrorCode): void;
}

/** Output waiting for its turn: header blocks go as soon as they are first, DATA as windows allow. */
export type Outbound =
  | { kind: "headers"; fields: readonly HeaderField[]; endStream: boolean }
  | { kind: "data"; bytes: Uint8Array; offset: number };

/** The connection's bookkeeping for one open stream. */
export class StreamState {
  readonly id: number;
  readonly sendWindow: SendWindow;
  readonly receiveWindow: ReceiveWindow;
  /** The peer sent END_STREAM. */
  remoteEnded = false;
  /** We queued END_STREAM (respond with endStream, or end()): nothing more may be queued. */
  localEnding = false;
  /**
   * Our END_STREAM went out before the peer's: half-closed (local). The application is done
   * with the stream; the connection still checks and flow-controls what the peer sends.
   */
  localEnded = false;
  /** When the stream opened (performance.now()), for requests sent too slowly. */
  openedAt = 0;
  /** The request's content-length, if it gave one, and the DATA bytes received so far. */
  contentLength: number | undefined;
  receivedBytes = 0;
  readonly queue: Outbound[] = [];
  queuedBytes = 0;
  listener: StreamListener | undefined;
  /** Set when the stream left the connection (possibly before its listener was known). */
  closedWith: StreamEnd | undefined;

  constructor(options: { id: number; sendWindow: number; receiveWindow: number }) {
    this.id = options.id;
    this.sendWindow = new SendWindow(options.sendWindow);
    this.receiveWindow = new ReceiveWindow(options.receiveWindow);
  }
}
