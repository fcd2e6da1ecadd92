/**
 * Blobs by digest under the state dir (`content/blobs/sha256/<hex>`), as containerd keeps
 * content. A blob is written to `content/ingest/` while it streams in, hashed and counted as
 * it goes, synced, and renamed into place only when its digest and size match: a blob that
 * is there is whole and verified, and a failed or cancelled fetch leaves nothing behind. Two
 * fetches of one digest share one download. A blob can be read while it is still coming in
 * (`stream`): the reader follows the writer, and fails if the blob turns out not to match.
 */
import { join } from "node:path";
import { DataLossError, NotFoundError } from "../../lib/errors.ts";
import { SingleFlight } from "../../lib/single_flight.ts";
import { Digester, digestHex, isDigest } from "./digest.ts";

export interface BlobDescriptor {
  digest: string;
  size: number;
}

/** Bytes written so far out of the total; called as data arrives. */
export type Progress = (done: number, total: number) => void;

export interface IngestOptions {
  signal?: AbortSignal;
  onProgress?: Progress;
  /** Names the blob's origin in errors: `layer 2 of registry.local/app:v1`. */
  where?: string;
}

/** A blob being written: how far, and whether it ended well. */
interface Ingest {
  path: string;
  written: number;
  outcome: "writing" | "stored" | "failed";
  error?: unknown;
  changes: Changes;
}

/** Wakes whoever waits, each time something changed. */
class Changes {
  #waiters: (() => void)[] = [];

  wait(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const wake = () => {
        signal?.removeEventListener("abort", abort);
        resolve();
      };
      const abort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", abort, { once: true });
      this.#waiters.push(wake);
    });
  }

  notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

const readSize = 1 << 20;
const batchSize = 1 << 20;

export class ContentStore {
  readonly dir: string;
  readonly #blobs: string;
  readonly #ingest: string;
  readonly #flights = new SingleFlight<void>();
  /** Blobs being written, by digest. */
  readonly #ingests = new Map<string, Ingest>();
  /** Readers waiting for a blob whose fetch has not begun. */
  readonly #awaited = new Map<string, Changes>();
  /** Any blob begun, grown or ended. */
  readonly #anyChange = new Changes();

  private constructor(dir: string) {
    this.dir = dir;
    this.#blobs = join(dir, "blobs", "sha256");
    this.#ingest = join(dir, "ingest");
  }

  /**
   * Opens (creating) the store. What is in `ingest/` was being written by a process that is
   * gone (one process owns a state dir at a time): it is removed.
   */
  static open(dir: string): ContentStore {
    const store = new ContentStore(dir);
    Deno.mkdirSync(store.#blobs, { recursive: true, mode: 0o700 });
    try {
      Deno.removeSync(store.#ingest, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    Deno.mkdirSync(store.#ingest, { recursive: true, mode: 0o700 });
    return store;
  }

  path(digest: string): string {
    return join(this.#blobs, digestHex(digest));
  }

  /** Whether the blob is stored (with this size, when given). */
  has(digest: string, size?: number): boolean {
    try {
      const info = Deno.statSync(this.path(digest));
      return info.isFile && (size === undefined || info.size === size);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }

  /** A stored blob whole; for small documents (manifests, configs). */
  async read(digest: string, limit: number): Promise<Uint8Array> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path(digest));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new NotFoundError(`Blob ${digest} is not in the content store`);
      }
      throw error;
    }
    try {
      const size = (await file.stat()).size;
      if (size > limit) throw new DataLossError(`Blob ${digest} is larger than ${limit} bytes`);
      const data = new Uint8Array(size);
      let offset = 0;
      while (offset < size) {
        const n = await file.read(data.subarray(offset));
        if (n === null) break;
        offset += n;
      }
      return data.subarray(0, offset);
    } finally {
      file.close();
    }
  }

  /** Stores bytes already in memory, checking them against `digest`. */
  async put(expected: BlobDescriptor, data: Uint8Array, where = "blob"): Promise<void> {
    await this.ingest(expected, async function* () {
      yield data;
    }, { where });
  }

  /**
   * Stores a blob from `open`'s chunks unless it is stored already. The digest and size are
   * checked while the data streams; a mismatch, a failure or a cancellation leaves nothing.
   */
  ingest(
    expected: BlobDescriptor,
    open: (signal: AbortSignal) => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>,
    options: IngestOptions = {},
  ): Promise<void> {
    if (!isDigest(expected.digest)) {
      return Promise.reject(new DataLossError(`Not a sha256 digest: "${expected.digest}"`));
    }
    if (this.has(expected.digest, expected.size)) {
      options.onProgress?.(expected.size, expected.size);
      return Promise.resolve();
    }
    // A caller that joined another's fetch sees no progress until it ends: then it does.
    return this.#flights.run(
      expected.digest,
      (signal) => this.#write(expected, open, signal, options),
      options.signal,
    ).then(() => options.onProgress?.(expected.size, expected.size));
  }

  /**
   * A blob's bytes in fresh chunks: from its file once stored, or following its ingest while
   * it comes in (waiting for one to begin). A reader of a blob that fails to match its digest
   * fails too, so nothing read from it is taken as whole.
   */
  async *stream(blob: BlobDescriptor, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    for (;;) {
      signal?.throwIfAborted();
      if (this.has(blob.digest, blob.size)) {
        yield* readFile(this.path(blob.digest), 0, blob.size, signal);
        return;
      }
      const ingest = this.#ingests.get(blob.digest);
      if (ingest !== undefined) {
        yield* this.#follow(ingest, blob, signal);
        return;
      }
      let changes = this.#awaited.get(blob.digest);
      if (changes === undefined) this.#awaited.set(blob.digest, changes = new Changes());
      await changes.wait(signal);
    }
  }

  /**
   * How far a blob is: stored, bytes written so far while it comes in, or undefined when its
   * fetch has not begun.
   */
  progressOf(blob: BlobDescriptor): "stored" | number | undefined {
    if (this.has(blob.digest, blob.size)) return "stored";
    return this.#ingests.get(blob.digest)?.written;
  }

  /**
   * Resolves once none of these blobs is being written: a fetch that was cancelled has then
   * removed its partial file (a caller that gives up stops waiting at once; the writing stops
   * at its next chunk).
   */
  async settled(digests: readonly string[]): Promise<void> {
    for (;;) {
      const writing = digests.map((d) => this.#ingests.get(d)).find((i) => i !== undefined);
      if (writing === undefined) return;
      await writing.changes.wait(undefined);
    }
  }

  /** Resolves when any blob begins, grows or ends. */
  changed(signal?: AbortSignal): Promise<void> {
    return this.#anyChange.wait(signal);
  }

  async *#follow(
    ingest: Ingest,
    blob: BlobDescriptor,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Uint8Array> {
    // The file appears once the fetch has its first bytes, and leaves when it is stored.
    let file: Deno.FsFile;
    for (;;) {
      if (ingest.outcome === "failed") throw failedBlob(blob, ingest.error);
      if (ingest.outcome === "stored") {
        yield* readFile(this.path(blob.digest), 0, blob.size, signal);
        return;
      }
      try {
        file = await Deno.open(ingest.path);
        break;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        await ingest.changes.wait(signal);
      }
    }
    try {
      let offset = 0;
      for (;;) {
        signal?.throwIfAborted();
        const outcome = outcomeOf(ingest);
        if (outcome === "failed") throw failedBlob(blob, ingest.error);
        if (offset < ingest.written) {
          const length = Math.min(readSize, ingest.written - offset);
          yield await readExactly(file, length);
          offset += length;
          continue;
        }
        if (outcome === "stored") return;
        await ingest.changes.wait(signal);
      }
    } finally {
      file.close();
    }
  }

  /** Removes a blob; absent is fine. */
  async remove(digest: string): Promise<void> {
    await removeQuietly(this.path(digest));
  }

  /** The digests stored. */
  list(): string[] {
    const digests: string[] = [];
    for (const entry of Deno.readDirSync(this.#blobs)) {
      if (entry.isFile && /^[a-f0-9]{64}$/.test(entry.name)) digests.push(`sha256:${entry.name}`);
    }
    return digests;
  }

  /** Bytes (allocated blocks) and inodes the store holds, ingest included. */
  usage(): { bytes: number; inodes: number } {
    let bytes = 0;
    let inodes = 0;
    const walk = (dir: string) => {
      for (const entry of Deno.readDirSync(dir)) {
        const path = join(dir, entry.name);
        const info = Deno.lstatSync(path);
        inodes++;
        bytes += info.blocks !== null ? info.blocks * 512 : info.size;
        if (info.isDirectory) walk(path);
      }
    };
    walk(this.dir);
    return { bytes, inodes };
  }

  async #write(
    expected: BlobDescriptor,
    open: (signal: AbortSignal) => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>,
    signal: AbortSignal,
    options: IngestOptions,
  ): Promise<void> {
    const where = options.where ?? `blob ${expected.digest}`;
    const temp = this.#tempPath(digestHex(expected.digest));
    const digester = new Digester();
    const ingest: Ingest = { path: temp, written: 0, outcome: "writing", changes: new Changes() };
    this.#ingests.set(expected.digest, ingest);
    this.#awaited.get(expected.digest)?.notify();
    this.#awaited.delete(expected.digest);
    this.#anyChange.notify();
    try {
      const chunks = await open(signal);
      await writeChunks(
        temp,
        sized(chunks, expected.size, where),
        digester,
        signal,
        (done) => {
          ingest.written = done;
          ingest.changes.notify();
          this.#anyChange.notify();
          options.onProgress?.(done, expected.size);
        },
      );
      const actual = digester.digest();
      if (actual !== expected.digest) {
        throw new DataLossError(
          `${where}: content does not match its digest: expected ${expected.digest}, got ${actual}`,
        );
      }
      await Deno.rename(temp, this.path(expected.digest));
      ingest.outcome = "stored";
    } catch (error) {
      ingest.outcome = "failed";
      ingest.error = error;
      await removeQuietly(temp);
      throw error;
    } finally {
      this.#ingests.delete(expected.digest);
      ingest.changes.notify();
      this.#anyChange.notify();
    }
  }

  #tempPath(name: string): string {
    const nonce = crypto.getRandomValues(new Uint8Array(6));
    return join(this.#ingest, `${name}.${[...nonce].map((b) => b.toString(16)).join("")}.part`);
  }
}

/** The writer changes it while a reader waits: read through a call, not a narrowed field. */
function outcomeOf(ingest: Ingest): Ingest["outcome"] {
  return ingest.outcome;
}

function failedBlob(blob: BlobDescriptor, cause: unknown): DataLossError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new DataLossError(`Blob ${blob.digest} was not stored: ${why}`, { cause });
}

/** `length` bytes of a file from `offset`, in fresh chunks (a socket may keep each a while). */
async function* readFile(
  path: string,
  offset: number,
  length: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  const file = await Deno.open(path);
  try {
    if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
    for (let left = length; left > 0;) {
      signal?.throwIfAborted();
      const chunk = await readExactly(file, Math.min(readSize, left));
      left -= chunk.length;
      yield chunk;
    }
  } finally {
    file.close();
  }
}

async function readExactly(file: Deno.FsFile, length: number): Promise<Uint8Array> {
  const chunk = new Uint8Array(length);
  for (let filled = 0; filled < length;) {
    const n = await file.read(chunk.subarray(filled));
    if (n === null) throw new DataLossError(`A blob file ended ${length - filled} bytes early`);
    filled += n;
  }
  return chunk;
}

/** The chunks, refusing more or fewer bytes than the descriptor says. */
async function* sized(
  chunks: AsyncIterable<Uint8Array>,
  size: number,
  where: string,
): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of chunks) {
    seen += chunk.length;
    if (seen > size) {
      throw new DataLossError(`${where}: more data than the ${size} bytes its descriptor says`);
    }
    yield chunk;
  }
  if (seen !== size) {
    throw new DataLossError(`${where}: ${seen} bytes where its descriptor says ${size}`);
  }
}

/**
 * Writes chunks to a new file, hashing them, then syncs it: once renamed, a blob must
 * survive a power loss whole, as containerd's commit does.
 */
async function writeChunks(
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  digester: Digester,
  signal?: AbortSignal,
  onWritten?: (bytes: number) => void,
): Promise<void> {
  const file = await Deno.open(path, { createNew: true, write: true, mode: 0o644 });
  // Chunks arrive at 64 KiB (fetch): gathered into 1 MiB, each is hashed and written in one op.
  const batch = new Uint8Array(batchSize);
  let filled = 0;
  const flush = async () => {
    const data = batch.subarray(0, filled);
    digester.update(data);
    for (let offset = 0; offset < data.length;) offset += await file.write(data.subarray(offset));
    filled = 0;
    onWritten?.(digester.bytes);
  };
  try {
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      if (chunk.length >= batchSize && filled === 0) {
        digester.update(chunk);
        for (let offset = 0; offset < chunk.length;) {
          offset += await file.write(chunk.subarray(offset));
        }
        onWritten?.(digester.bytes);
        continue;
      }
      for (let taken = 0; taken < chunk.length;) {
        const n = Math.min(chunk.length - taken, batchSize - filled);
        batch.set(chunk.subarray(taken, taken + n), filled);
        filled += n;
        taken += n;
        if (filled === batchSize) await flush();
      }
    }
    if (filled > 0) await flush();
    signal?.throwIfAborted();
    await file.syncData();
  } finally {
    file.close();
  }
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
