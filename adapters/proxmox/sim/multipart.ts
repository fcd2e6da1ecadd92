/**
 * multipart/form-data read as it arrives, as pveproxy reads an upload: fields in memory, the
 * file part written to a spool file (`pveupload-<hex>`, pveproxy's name in /var/tmp), so an
 * upload of any size costs a buffer, not its size.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { concatBytes, indexOfBytes } from "../../../lib/bytes.ts";

export interface SpooledFile {
  field: string;
  filename: string;
  /** Where the data is; the request's handler moves it, or it is removed after the answer. */
  path: string;
  size: number;
}

export interface SpooledForm {
  fields: Record<string, string>;
  file?: SpooledFile;
}

/** The body is not well-formed multipart. */
export class MultipartError extends Error {}

const maxHeaderBytes = 16 * 1024;
const headerEnd = new TextEncoder().encode("\r\n\r\n");
const maxFieldBytes = 1024 * 1024;

/** The boundary of a multipart/form-data content type, or undefined for other types. */
export function multipartBoundary(contentType: string | null): string | undefined {
  if (contentType === null || !/^multipart\/form-data\b/i.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

/** Reads a whole multipart body; removes its spool file if the body is malformed. */
export async function readMultipart(
  chunks: AsyncIterable<Uint8Array>,
  boundary: string,
  spoolDir: string,
): Promise<SpooledForm> {
  const parser = new MultipartParser(boundary, spoolDir);
  try {
    for await (const chunk of chunks) await parser.push(chunk);
    return parser.end();
  } catch (error) {
    await parser.discard();
    throw error;
  }
}

type State = "preamble" | "afterDelimiter" | "headers" | "data" | "done";

class MultipartParser {
  readonly #delimiter: Buffer;
  readonly #spoolDir: string;
  /**
   * Bytes not consumed yet: a view into `#work`, where each chunk is copied after what is
   * left of the last one. One buffer, reused: fresh memory per chunk costs more in page
   * faults than the copy does. Starts with CRLF so the first boundary reads like every later one.
   */
  #pending: Buffer = Buffer.from("\r\n");
  #work = new Uint8Array(0);
  #state: State = "preamble";
  #part: { name: string; filename?: string; chunks: Uint8Array[]; size: number } | undefined;
  #file: Deno.FsFile | undefined;
  readonly #form: SpooledForm = { fields: {} };

  constructor(boundary: string, spoolDir: string) {
    this.#delimiter = Buffer.from(`\r\n--${boundary}`);
    this.#spoolDir = spoolDir;
  }

  /** Takes a chunk; the caller may reuse its buffer once this resolves. */
  async push(chunk: Uint8Array): Promise<void> {
    const keep = this.#pending.length;
    const need = keep + chunk.length;
    if (this.#work.length < need) {
      const next = new Uint8Array(Math.max(need, 2 * this.#work.length));
      next.set(this.#pending);
      this.#work = next;
    } else if (this.#pending.buffer === this.#work.buffer) {
      const from = this.#pending.byteOffset - this.#work.byteOffset;
      this.#work.copyWithin(0, from, from + keep);
    } else {
      this.#work.set(this.#pending);
    }
    this.#work.set(chunk, keep);
    this.#pending = Buffer.from(this.#work.buffer, this.#work.byteOffset, need);
    for (;;) {
      const progressed = await this.#step();
      if (!progressed) return;
    }
  }

  end(): SpooledForm {
    if (this.#state !== "done") {
      throw new MultipartError("multipart body ends before its last boundary");
    }
    return this.#form;
  }

  async discard(): Promise<void> {
    this.#file?.close();
    this.#file = undefined;
    if (this.#form.file !== undefined) {
      await Deno.remove(this.#form.file.path).catch(() => {});
    }
  }

  /** Consumes what it can of the pending bytes; false when it needs more. */
  async #step(): Promise<boolean> {
    const delimiter = this.#delimiter;
    switch (this.#state) {
      case "preamble": {
        const at = indexOfBytes(this.#pending, delimiter);
        if (at === -1) {
          this.#keepTail(delimiter.length);
          return false;
        }
        this.#pending = this.#pending.subarray(at + delimiter.length);
        this.#state = "afterDelimiter";
        return true;
      }
      case "afterDelimiter": {
        // Transport padding (spaces, tabs) may follow a boundary before its CRLF.
        let i = 0;
        while (
          i < this.#pending.length && (this.#pending[i] === 0x20 || this.#pending[i] === 0x09)
        ) i++;
        if (this.#pending.length < i + 2) return false;
        const next = this.#pending.toString("latin1", i, i + 2);
        if (next === "--") {
          this.#state = "done";
          this.#pending = Buffer.alloc(0);
          return false;
        }
        if (next !== "\r\n") throw new MultipartError("malformed multipart boundary");
        this.#pending = this.#pending.subarray(i + 2);
        this.#state = "headers";
        return true;
      }
      case "headers": {
        const end = indexOfBytes(this.#pending, headerEnd);
        if (end === -1) {
          if (this.#pending.length > maxHeaderBytes) {
            throw new MultipartError("part headers too large");
          }
          return false;
        }
        const headers = this.#pending.toString("utf8", 0, end);
        this.#pending = this.#pending.subarray(end + 4);
        await this.#openPart(headers);
        this.#state = "data";
        return true;
      }
      case "data": {
        const at = indexOfBytes(this.#pending, delimiter);
        if (at === -1) {
          const keep = Math.min(this.#pending.length, delimiter.length - 1);
          this.#write(this.#pending.subarray(0, this.#pending.length - keep));
          this.#pending = this.#pending.subarray(this.#pending.length - keep);
          return false;
        }
        this.#write(this.#pending.subarray(0, at));
        this.#pending = this.#pending.subarray(at + delimiter.length);
        this.#closePart();
        this.#state = "afterDelimiter";
        return true;
      }
      case "done":
        this.#pending = Buffer.alloc(0);
        return false;
    }
  }

  #keepTail(length: number): void {
    if (this.#pending.length > length) {
      this.#pending = this.#pending.subarray(this.#pending.length - length);
    }
  }

  async #openPart(headers: string): Promise<void> {
    const disposition = headers.split("\r\n")
      .find((line) => /^content-disposition:/i.test(line));
    const name = disposition === undefined ? undefined : parameter(disposition, "name");
    if (name === undefined) throw new MultipartError("multipart part without a name");
    const filename = disposition === undefined ? undefined : parameter(disposition, "filename");
    this.#part = { name, chunks: [], size: 0, ...(filename === undefined ? {} : { filename }) };
    if (filename !== undefined) {
      if (this.#form.file !== undefined) {
        throw new MultipartError("more than one file in an upload");
      }
      const hex = [...crypto.getRandomValues(new Uint8Array(8))]
        .map((b) => b.toString(16).padStart(2, "0")).join("");
      const path = join(this.#spoolDir, `pveupload-${hex}`);
      Deno.mkdirSync(this.#spoolDir, { recursive: true });
      this.#file = await Deno.open(path, { createNew: true, write: true, mode: 0o600 });
      this.#form.file = { field: name, filename, path, size: 0 };
    }
  }

  #write(data: Uint8Array): void {
    const part = this.#part;
    if (part === undefined || data.length === 0) return;
    part.size += data.length;
    if (this.#file !== undefined) {
      for (let offset = 0; offset < data.length;) {
        // Synchronous: an async write hands each chunk to a thread and back, which cost more
        // here than the write itself (the page cache takes 256 KiB in ~50 µs).
        offset += this.#file.writeSync(data.subarray(offset));
      }
      return;
    }
    if (part.size > maxFieldBytes) throw new MultipartError(`field "${part.name}" too large`);
    part.chunks.push(new Uint8Array(data));
  }

  #closePart(): void {
    const part = this.#part;
    this.#part = undefined;
    if (part === undefined) return;
    if (this.#file !== undefined) {
      this.#file.close();
      this.#file = undefined;
      this.#form.file!.size = part.size;
      return;
    }
    this.#form.fields[part.name] = new TextDecoder().decode(concatBytes(part.chunks));
  }
}

function parameter(header: string, name: string): string | undefined {
  const match = new RegExp(`;\\s*${name}="((?:[^"\\\\]|\\\\.)*)"|;\\s*${name}=([^;\\s]+)`, "i")
    .exec(header);
  if (match === null) return undefined;
  return (match[1] ?? match[2])!.replace(/\\(.)/g, "$1");
}
