/**
 * Everything a connection sends goes through one writer: frames queued in the same tick leave
 * in one write, and `backlog` tells the connection when to stop producing DATA (a slow reader
 * holds back memory, not just the socket).
 */

/** The part of a Deno connection the writer uses. */
export interface Writable {
  write(bytes: Uint8Array): Promise<number>;
}

// One write call carries at most this much; the rest follows when it is done.
const MAX_WRITE_BYTES = 256 * 1024;
// Joins smaller than this get a buffer of their own (young, cheap); larger ones the scratch.
const SCRATCH_FROM_BYTES = 64 * 1024;

/** The one way out to a connection's socket: ordered, coalesced, and measured. */
export class SocketWriter {
  readonly #socket: Writable;
  readonly #onDrain: () => void;
  readonly #onError: (error: unknown) => void;
  #chunks: Uint8Array[] = [];
  #backlog = 0;
  #scheduled = false;
  #writing = false;
  #closed = false;
  #idle: (() => void)[] = [];
  #scratch: Uint8Array | undefined;

  /**
   * `onDrain`: called after each completed write, to queue more; `onError`: the socket failed
   * (the writer is closed by then).
   */
  constructor(socket: Writable, handlers: { onDrain: () => void; onError: (e: unknown) => void }) {
    this.#socket = socket;
    this.#onDrain = handlers.onDrain;
    this.#onError = handlers.onError;
  }

  /** Bytes queued and not yet written. */
  get backlog(): number {
    return this.#backlog;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Queues bytes; they leave in order. Ignored once closed. */
  push(chunk: Uint8Array): void {
    if (this.#closed || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#backlog += chunk.length;
    if (this.#writing || this.#scheduled) return;
    this.#scheduled = true;
    // Later in this tick more frames usually follow (DATA and trailers after HEADERS).
    queueMicrotask(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  /** Resolves once everything queued so far is written, or the writer is closed. */
  drained(): Promise<void> {
    if (this.#backlog === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Drops whatever is queued; later pushes are ignored. */
  close(): void {
    this.#closed = true;
    this.#chunks = [];
    this.#backlog = 0;
    this.#settle();
  }

  async #flush(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#chunks.length > 0 && !this.#closed) {
        const bytes = this.#take();
        let written = 0;
        while (written < bytes.length) {
          written += await this.#socket.write(bytes.subarray(written));
          if (this.#closed) return;
        }
        this.#backlog -= bytes.length;
        if (this.#backlog === 0) this.#settle();
        this.#onDrain();
      }
    } catch (error) {
      this.close();
      this.#onError(error);
    } finally {
      this.#writing = false;
    }
  }

  /** The next bytes to write: queued chunks joined up to MAX_WRITE_BYTES. */
  #take(): Uint8Array {
    const first = this.#chunks[0]!;
    if (this.#chunks.length === 1 || first.length >= MAX_WRITE_BYTES) {
      this.#chunks.shift();
      return first;
    }
    let count = 0;
    let length = 0;
    while (count < this.#chunks.length && length + this.#chunks[count]!.length <= MAX_WRITE_BYTES) {
      length += this.#chunks[count]!.length;
      count++;
    }
    // Big joins reuse one buffer (each write is done before the next is taken): a new one of
    // 256 KiB is a large object to V8, and a 4 MB listing made sixteen of them per call.
    const joined = length < SCRATCH_FROM_BYTES
      ? new Uint8Array(length)
      : (this.#scratch ??= new Uint8Array(MAX_WRITE_BYTES)).subarray(0, length);
    let offset = 0;
    for (const chunk of this.#chunks.splice(0, count)) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    return joined;
  }

  #settle(): void {
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
