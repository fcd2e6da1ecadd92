/**
 * The little of the V8 inspector protocol the fuzzer needs from a server started with
 * `--inspect=127.0.0.1:0`: a full garbage collection on demand, so that its memory is
 * measured with what is still referenced, not with what V8 has not yet got round to freeing.
 */

/** The inspector's WebSocket URL from the "Debugger listening on ws://…" line Deno prints. */
export function inspectorUrl(stderr: string): string | undefined {
  return /^Debugger listening on (ws:\/\/\S+)$/m.exec(stderr)?.[1];
}

export class V8Inspector {
  readonly #socket: WebSocket;
  readonly #replies = new Map<number, (reply: { result?: unknown; error?: unknown }) => void>();
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (message) => {
      const reply = JSON.parse(String(message.data));
      this.#replies.get(reply.id)?.(reply);
      this.#replies.delete(reply.id);
    };
    socket.onclose = () => {
      for (const answer of this.#replies.values()) answer({ error: "the inspector closed" });
      this.#replies.clear();
    };
  }

  static async connect(url: string): Promise<V8Inspector> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`Cannot reach the V8 inspector at ${url}`));
    });
    return new V8Inspector(socket);
  }

  /** A full, memory-reducing collection (what V8 does under memory pressure). */
  async collectGarbage(): Promise<void> {
    await this.#call("HeapProfiler.collectGarbage");
  }

  /** Bytes in use on the JS heap plus the contents of live ArrayBuffers (kept off the heap). */
  async heapUsed(): Promise<number> {
    const usage = await this.#call("Runtime.getHeapUsage") as {
      usedSize: number;
      backingStorageSize: number;
    };
    return usage.usedSize + usage.backingStorageSize;
  }

  close(): void {
    this.#socket.close();
  }

  async #call(method: string): Promise<unknown> {
    const id = this.#nextId++;
    const reply = await new Promise<{ result?: unknown; error?: unknown }>((resolve) => {
      this.#replies.set(id, resolve);
      this.#socket.send(JSON.stringify({ id, method }));
    });
    if (reply.error !== undefined) {
      throw new Error(`V8 inspector ${method}: ${JSON.stringify(reply.error)}`);
    }
    return reply.result;
  }
}
