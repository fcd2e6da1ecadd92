/**
 * A byte-level HTTP/2 client for protocol tests: it sends exactly the frames a test builds
 * (well-formed or not) and hands back every frame the server sends, so tests can check what
 * is on the wire. Request headers go out as plain literals (no HPACK table, no Huffman), built
 * here rather than with the server's encoder; responses are decoded with the server's HPACK
 * decoder, which tests/adapters/cri/h2/hpack_test.ts checks against RFC 7541.
 *
 *   await using h2 = await H2Client.connect(socketPath, { settings: [[4, 1000]] });
 *   h2.headers(1, grpcRequestHeaders("/runtime.v1.RuntimeService/Version"));
 *   h2.data(1, grpcMessage(new Uint8Array(0)), { endStream: true });
 *   const response = await h2.response(1);
 */
import { type HeaderField, HpackDecoder } from "../../adapters/cri/h2/hpack.ts";
import { concatBytes } from "../../lib/bytes.ts";

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8, PRIORITY: 0x20 } as const;

export const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** How much one socket read takes at most. */
const READ_BYTES = 256 * 1024;

/** One frame as received, header blocks already joined and decoded. */
export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
  /** HEADERS (with its CONTINUATIONs): the decoded fields. */
  headers?: HeaderField[];
}

/** A response as collected by `response()`. */
export interface Response {
  headers: HeaderField[];
  /** DATA payloads joined. */
  body: Uint8Array;
  trailers: HeaderField[] | undefined;
  /** Set if the stream ended with RST_STREAM instead. */
  rstCode: number | undefined;
  /** Every frame of the stream, in order. */
  frames: Frame[];
}

export class H2Client implements AsyncDisposable {
  readonly #conn: Deno.Conn;
  readonly #decoder = new HpackDecoder();
  readonly #frames: Frame[] = [];
  #waiters: (() => void)[] = [];
  #eof = false;
  #pendingBlock: Frame | undefined;
  #blockFragments: Uint8Array[] = [];
  readonly #reading: Promise<void>;
  #writing: Promise<void> = Promise.resolve();
  /** The server's SETTINGS as received, in order. */
  readonly serverSettings: [number, number][] = [];

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reading = this.#read();
  }

  /**
   * Connects and, unless `preface` is false, sends the client preface and SETTINGS (the given
   * ones; none means the protocol defaults).
   */
  static async connect(
    socketPath: string,
    options: { preface?: boolean; settings?: [number, number][] } = {},
  ): Promise<H2Client> {
    const conn = await Deno.connect({ transport: "unix", path: socketPath });
    const client = new H2Client(conn);
    if (options.preface ?? true) {
      client.send(PREFACE);
      client.settings(options.settings ?? []);
    }
    return client;
  }

  /** True once the server closed the connection. */
  get ended(): boolean {
    return this.#eof && this.#frames.length === 0;
  }

  /** Queues bytes for the socket, in order; `flushed()` waits for them. */
  send(bytes: Uint8Array): void {
    this.#writing = this.#writing.then(async () => {
      let written = 0;
      while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
    }).catch(() => {});
  }

  /** Resolves once everything sent so far is written (or the socket failed). */
  flushed(): Promise<void> {
    return this.#writing;
  }

  frame(
    type: number,
    flags: number,
    streamId: number,
    payload: Uint8Array = new Uint8Array(0),
  ): void {
    this.send(encodeFrame(type, flags, streamId, payload));
  }

  settings(settings: [number, number][]): void {
    const payload = new Uint8Array(settings.length * 6);
    const view = new DataView(payload.buffer);
    settings.forEach(([id, value], i) => {
      view.setUint16(i * 6, id);
      view.setUint32(i * 6 + 2, value);
    });
    this.frame(FRAME.SETTINGS, 0, 0, payload);
  }

  /** HEADERS with END_HEADERS (one frame), or split into CONTINUATIONs of `fragmentSize`. */
  headers(
    streamId: number,
    fields: HeaderField[],
    options: { endStream?: boolean; fragmentSize?: number } = {},
  ): void {
    this.headerBlock(streamId, encodeLiteralBlock(fields), options);
  }

  /** A header block as given (HPACK bytes), sent as `headers` sends its fields. */
  headerBlock(
    streamId: number,
    block: Uint8Array,
    options: { endStream?: boolean; fragmentSize?: number } = {},
  ): void {
    const size = options.fragmentSize ?? block.length;
    const endStream = options.endStream ? FLAG.END_STREAM : 0;
    for (let offset = 0; offset < block.length || offset === 0; offset += size) {
      const last = offset + size >= block.length;
      const fragment = block.subarray(offset, offset + size);
      const type = offset === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
      const flags = (offset === 0 ? endStream : 0) | (last ? FLAG.END_HEADERS : 0);
      this.frame(type, flags, streamId, fragment);
      if (last) break;
    }
  }

  /** DATA, optionally padded. */
  data(
    streamId: number,
    bytes: Uint8Array,
    options: { endStream?: boolean; padding?: number } = {},
  ): void {
    let flags = options.endStream ? FLAG.END_STREAM : 0;
    let payload = bytes;
    if (options.padding !== undefined) {
      flags |= FLAG.PADDED;
      payload = new Uint8Array(1 + bytes.length + options.padding);
      payload[0] = options.padding;
      payload.set(bytes, 1);
    }
    this.frame(FRAME.DATA, flags, streamId, payload);
  }

  windowUpdate(streamId: number, increment: number): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, increment);
    this.frame(FRAME.WINDOW_UPDATE, 0, streamId, payload);
  }

  rstStream(streamId: number, code: number): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, code);
    this.frame(FRAME.RST_STREAM, 0, streamId, payload);
  }

  goaway(lastStreamId: number, code = 0): void {
    const payload = new Uint8Array(8);
    new DataView(payload.buffer).setUint32(0, lastStreamId);
    new DataView(payload.buffer).setUint32(4, code);
    this.frame(FRAME.GOAWAY, 0, 0, payload);
  }

  ping(opaque: Uint8Array): void {
    this.frame(FRAME.PING, 0, 0, opaque);
  }

  /** The next frame the server sent, or undefined once the connection ended. */
  next(timeoutMs = 5_000): Promise<Frame | undefined> {
    return this.#take(() => true, timeoutMs);
  }

  /** The first received frame that matches (others stay queued), or undefined at the end. */
  async #take(match: (frame: Frame) => boolean, timeoutMs: number): Promise<Frame | undefined> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const index = this.#frames.findIndex(match);
      if (index >= 0) return this.#frames.splice(index, 1)[0];
      if (this.#eof) return undefined;
      const left = until - Date.now();
      if (left <= 0) throw new Error(`No frame from the server within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Frames until one matches (returned last); throws if the connection ends first. */
  async until(match: (frame: Frame) => boolean, timeoutMs = 5_000): Promise<Frame[]> {
    const seen: Frame[] = [];
    for (;;) {
      const frame = await this.next(timeoutMs);
      if (frame === undefined) {
        throw new Error(`Connection ended before the awaited frame; saw ${describe(seen)}`);
      }
      seen.push(frame);
      if (match(frame)) return seen;
    }
  }

  /** Collects one stream's response until END_STREAM or RST_STREAM; other frames stay queued. */
  async response(streamId: number, timeoutMs = 5_000): Promise<Response> {
    const frames: Frame[] = [];
    for (;;) {
      const frame = await this.#take((f) => f.streamId === streamId, timeoutMs);
      if (frame === undefined) {
        throw new Error(`Connection ended before stream ${streamId} did; saw ${describe(frames)}`);
      }
      frames.push(frame);
      const ends = frame.type === FRAME.RST_STREAM ||
        ((frame.type === FRAME.HEADERS || frame.type === FRAME.DATA) &&
          (frame.flags & FLAG.END_STREAM) !== 0);
      if (ends) break;
    }
    const mine = frames.filter((f) => f.streamId === streamId);
    const headerFrames = mine.filter((f) => f.type === FRAME.HEADERS);
    const data = mine.filter((f) => f.type === FRAME.DATA).map((f) => f.payload);
    const body = concatBytes(data);
    const rst = mine.find((f) => f.type === FRAME.RST_STREAM);
    return {
      headers: headerFrames[0]?.headers ?? [],
      body,
      trailers: headerFrames.length > 1 ? headerFrames.at(-1)!.headers : undefined,
      rstCode: rst === undefined
        ? undefined
        : new DataView(rst.payload.buffer, rst.payload.byteOffset).getUint32(0),
      frames: mine,
    };
  }

  /** Waits for the server's GOAWAY and the end of the connection; returns the GOAWAY's code. */
  async goawayCode(timeoutMs = 5_000): Promise<number> {
    const goaway = (await this.until((f) => f.type === FRAME.GOAWAY, timeoutMs)).at(-1)!;
    await this.closedByServer(timeoutMs);
    return new DataView(goaway.payload.buffer, goaway.payload.byteOffset).getUint32(4);
  }

  /** Resolves once the server has closed the connection (frames before it stay readable). */
  async closedByServer(timeoutMs = 5_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.#eof) {
      if (Date.now() > until) throw new Error(`Server kept the connection open ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Every frame received so far, without waiting. */
  drain(): Frame[] {
    return this.#frames.splice(0);
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writing;
    this.close();
    await this.#reading;
  }

  /**
   * One read buffer, reused; each frame's payload is copied out of it once. (A fresh buffer per
   * read made a large allocation for every small answer.)
   */
  async #read(): Promise<void> {
    const chunk = new Uint8Array(READ_BYTES);
    let leftover = new Uint8Array(0);
    try {
      for (;;) {
        const n = await this.#conn.read(chunk);
        if (n === null) break;
        let buffer = chunk.subarray(0, n);
        if (leftover.length > 0) {
          const joined = new Uint8Array(leftover.length + n);
          joined.set(leftover);
          joined.set(buffer, leftover.length);
          buffer = joined;
        }
        let offset = 0;
        while (buffer.length - offset >= 9) {
          const view = new DataView(buffer.buffer, buffer.byteOffset + offset);
          const length = view.getUint32(0) >>> 8;
          if (buffer.length - offset < 9 + length) break;
          this.#received({
            type: buffer[offset + 3]!,
            flags: buffer[offset + 4]!,
            streamId: view.getUint32(5) & 0x7fff_ffff,
            payload: buffer.slice(offset + 9, offset + 9 + length),
          });
          offset += 9 + length;
        }
        leftover = buffer.slice(offset);
      }
    } catch {
      // closed by us, or reset
    } finally {
      this.#eof = true;
      this.#wake();
    }
  }

  #received(frame: Frame): void {
    if (frame.type === FRAME.SETTINGS && (frame.flags & FLAG.ACK) === 0) {
      const view = new DataView(
        frame.payload.buffer,
        frame.payload.byteOffset,
        frame.payload.byteLength,
      );
      for (let i = 0; i < frame.payload.length; i += 6) {
        this.serverSettings.push([view.getUint16(i), view.getUint32(i + 2)]);
      }
    }
    if (frame.type === FRAME.HEADERS || frame.type === FRAME.CONTINUATION) {
      if (frame.type === FRAME.HEADERS) {
        this.#pendingBlock = frame;
        this.#blockFragments = [];
      }
      this.#blockFragments.push(frame.payload);
      if ((frame.flags & FLAG.END_HEADERS) === 0) return;
      const headers = this.#pendingBlock!;
      headers.headers = this.#decoder.decode(concatBytes(this.#blockFragments)).headers;
      headers.flags |= FLAG.END_HEADERS;
      this.#frames.push(headers);
    } else {
      this.#frames.push(frame);
    }
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** A frame's bytes. */
export function encodeFrame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array,
): Uint8Array {
  const bytes = new Uint8Array(9 + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, payload.length << 8);
  bytes[3] = type;
  bytes[4] = flags;
  view.setUint32(5, streamId);
  bytes.set(payload, 9);
  return bytes;
}

/** A header block of literals without indexing, new names, no Huffman (RFC 7541 §6.2.2). */
export function encodeLiteralBlock(fields: HeaderField[]): Uint8Array {
  const bytes: number[] = [];
  const integer = (value: number, prefixBits: number, flags: number) => {
    const max = (1 << prefixBits) - 1;
    if (value < max) return void bytes.push(flags | value);
    bytes.push(flags | max);
    for (value -= max; value >= 128; value = Math.floor(value / 128)) {
      bytes.push((value % 128) | 0x80);
    }
    bytes.push(value);
  };
  const string = (text: string) => {
    integer(text.length, 7, 0);
    for (let i = 0; i < text.length; i++) bytes.push(text.charCodeAt(i) & 0xff);
  };
  for (const [name, value] of fields) {
    bytes.push(0x00);
    string(name);
    string(value);
  }
  return Uint8Array.from(bytes);
}

/** The headers a gRPC client sends for `path`, plus any extra ones. */
export function grpcRequestHeaders(path: string, extra: HeaderField[] = []): HeaderField[] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "localhost"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ];
}

/** A length-prefixed gRPC message. */
export function grpcMessage(message: Uint8Array, compressed = false): Uint8Array {
  const bytes = new Uint8Array(5 + message.length);
  bytes[0] = compressed ? 1 : 0;
  new DataView(bytes.buffer).setUint32(1, message.length);
  bytes.set(message, 5);
  return bytes;
}

/** The grpc-status of a response: from its trailers, or its headers when Trailers-Only. */
export function grpcStatus(response: Response): string | undefined {
  return field(response.trailers ?? response.headers, "grpc-status");
}

/** The value of a header field, or undefined. */
export function field(fields: HeaderField[] | undefined, name: string): string | undefined {
  return fields?.find(([n]) => n === name)?.[1];
}

function describe(frames: Frame[]): string {
  const names = Object.fromEntries(Object.entries(FRAME).map(([k, v]) => [v, k]));
  return frames.map((f) => `${names[f.type] ?? f.type}(${f.streamId})`).join(", ") || "nothing";
}
