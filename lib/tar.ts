/**
 * Tar archives (POSIX ustar with pax extended headers), written and read as streams: OCI
 * layout archives are built from blobs on disk, and image archives and layers are read
 * entry by entry, never whole in memory. The reader also takes GNU long names and base-256
 * sizes, which `docker save` and GNU tar write.
 */
import { concatBytes } from "./bytes.ts";

export type TarType =
  | "file"
  | "hardlink"
  | "symlink"
  | "chardev"
  | "blockdev"
  | "directory"
  | "fifo"
  | "other";

export interface TarEntry {
  /** The path as stored, without a leading `./`. */
  name: string;
  type: TarType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

export type TarHeaderInput = Pick<TarEntry, "name" | "type"> & Partial<TarEntry>;

/** The archive is not tar, or is cut short. */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarFormatError";
  }
}

const block = 512;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const typeFlags: Record<TarType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  chardev: "3",
  blockdev: "4",
  directory: "5",
  fifo: "6",
  other: "0",
};

/** The largest value an 11-digit octal field holds (8 GiB - 1). */
const maxOctal11 = 0o77777777777;

// --- writing -----------------------------------------------------------------------------

/**
 * The header block(s) for one entry: a pax header first when the name, link name or size
 * does not fit ustar's fields.
 */
export function tarHeader(input: TarHeaderInput): Uint8Array {
  const entry = withDefaults(input);
  const pax: Record<string, string> = {};
  const split = splitName(entry.name);
  if (split === undefined) pax.path = entry.name;
  if (encoder.encode(entry.linkname).length > 100) pax.linkpath = entry.linkname;
  if (entry.size > maxOctal11) pax.size = String(entry.size);
  const main = ustarBlock(entry, split ?? { prefix: "", name: entry.name.slice(0, 100) });
  if (Object.keys(pax).length === 0) return main;
  const records = encoder.encode(Object.entries(pax).map(([k, v]) => paxRecord(k, v)).join(""));
  const base = entry.name.replace(/\/+$/, "").replace(/^.*\//, "").slice(0, 80);
  const paxHeader = ustarBlock(
    withDefaults({ name: "", type: "other" }),
    { prefix: "", name: `PaxHeaders.0/${base}` },
    { flag: "x", size: records.length },
  );
  return concatBytes([paxHeader, records, tarPadding(records.length), main]);
}

/** Zero bytes that round an entry's data up to a whole block. */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((block - (size % block)) % block);
}

/** The two zero blocks that end an archive. */
export function tarTrailer(): Uint8Array {
  return new Uint8Array(2 * block);
}

function withDefaults(input: TarHeaderInput): TarEntry {
  const isDir = input.type === "directory";
  return {
    size: 0,
    mode: isDir ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    mtime: 0,
    linkname: "",
    uname: "",
    gname: "",
    devmajor: 0,
    devminor: 0,
    ...input,
  };
}

/** ustar's prefix/name split, or undefined when the name cannot be split to fit. */
function splitName(name: string): { prefix: string; name: string } | undefined {
  const bytes = encoder.encode(name);
  if (bytes.length <= 100) return { prefix: "", name };
  if (bytes.length > 256) return undefined;
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== "/") continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (encoder.encode(prefix).length <= 155 && encoder.encode(rest).length <= 100 && rest) {
      return { prefix, name: rest };
    }
  }
  return undefined;
}

/** A pax record: its length counts itself, in decimal. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = encoder.encode(body).length;
  let length = bodyLength + String(bodyLength).length;
  if (String(length).length + bodyLength !== length) length++;
  return `${length}${body}`;
}

function ustarBlock(
  entry: TarEntry,
  names: { prefix: string; name: string },
  override: { flag?: string; size?: number } = {},
): Uint8Array {
  const header = new Uint8Array(block);
  const put = (offset: number, length: number, text: string) =>
    header.set(encoder.encode(text).subarray(0, length), offset);
  const octal = (offset: number, length: number, value: number) =>
    put(
      offset,
      length,
      Math.min(value, 8 ** (length - 1) - 1).toString(8).padStart(length - 1, "0") + "\0",
    );
  put(0, 100, names.name);
  octal(100, 8, entry.mode & 0o7777);
  octal(108, 8, entry.uid);
  octal(116, 8, entry.gid);
  octal(124, 12, override.size ?? entry.size);
  octal(136, 12, entry.mtime);
  put(148, 8, "        ");
  put(156, 1, override.flag ?? typeFlags[entry.type]);
  put(157, 100, entry.linkname);
  put(257, 8, "ustar\x0000");
  put(265, 32, entry.uname);
  put(297, 32, entry.gname);
  octal(329, 8, entry.devmajor);
  octal(337, 8, entry.devminor);
  put(345, 155, names.prefix);
  const sum = header.reduce((a, b) => a + b, 0);
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return header;
}

// --- reading -----------------------------------------------------------------------------

/** Where a reader's bytes come from: a stream, or a file it can seek in to skip data. */
export interface ByteSource {
  /** Up to `max` bytes, or null at the end. */
  read(max: number): Promise<Uint8Array | null>;
  /** Skips `n` bytes; false when the source ended first. */
  skip?(n: number): Promise<boolean>;
}

/** A source over chunks (a fetch body, a decompression stream). */
export function streamSource(chunks: AsyncIterable<Uint8Array>): ByteSource {
  const iterator = chunks[Symbol.asyncIterator]();
  let pending: Uint8Array | null = null;
  return {
    async read(max) {
      while (pending === null || pending.length === 0) {
        const next = await iterator.next();
        if (next.done) return null;
        pending = next.value;
      }
      const out = pending.subarray(0, max);
      pending = pending.subarray(out.length);
      return out;
    },
  };
}

/** A source over an open file, skipping by seeking. */
export function fileSource(file: Deno.FsFile, chunkSize = 1 << 20): ByteSource {
  const buffer = new Uint8Array(chunkSize);
  return {
    async read(max) {
      const view = buffer.subarray(0, Math.min(max, chunkSize));
      const n = await file.read(view);
      return n === null ? null : view.slice(0, n);
    },
    async skip(n) {
      const at = await file.seek(0, Deno.SeekMode.Current);
      const end = (await file.stat()).size;
      await file.seek(Math.min(at + n, end), Deno.SeekMode.Start);
      return at + n <= end;
    },
  };
}

/**
 * Reads an archive entry by entry. `next()` moves to the following entry, skipping whatever
 * of the current one's data was not read; `data()` streams the current entry's data.
 */
export class TarReader {
  readonly #source: ByteSource;
  #buffered: Uint8Array = new Uint8Array(0);
  /** Data bytes of the current entry not yet consumed, and its padding. */
  #remaining = 0;
  #padding = 0;
  #global: Record<string, string> = {};
  #ended = false;

  constructor(source: ByteSource) {
    this.#source = source;
  }

  /** The next entry, or undefined at the end of the archive. */
  async next(): Promise<TarEntry | undefined> {
    await this.#discard(this.#remaining + this.#padding);
    this.#remaining = 0;
    this.#padding = 0;
    if (this.#ended) return undefined;
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const header = await this.#readExact(block, true);
      if (header === null || header.every((b) => b === 0)) {
        this.#ended = true;
        return undefined;
      }
      const raw = parseHeader(header);
      const padding = (block - (raw.size % block)) % block;
      if (raw.flag === "x" || raw.flag === "g" || raw.flag === "L" || raw.flag === "K") {
        if (raw.size > 1 << 20) {
          throw new TarFormatError(`tar: extended header of ${raw.size} bytes`);
        }
        const data = await this.#readExact(raw.size, false);
        await this.#discard(padding);
        if (raw.flag === "x") pax = { ...pax, ...parsePax(data!) };
        else if (raw.flag === "g") this.#global = { ...this.#global, ...parsePax(data!) };
        else if (raw.flag === "L") longName = cString(data!);
        else longLink = cString(data!);
        continue;
      }
      const fields = { ...this.#global, ...pax };
      const entry: TarEntry = {
        name: stripDotSlash(fields.path ?? longName ?? raw.name),
        type: typeOf(raw.flag),
        size: fields.size !== undefined ? Number(fields.size) : raw.size,
        mode: raw.mode,
        uid: fields.uid !== undefined ? Number(fields.uid) : raw.uid,
        gid: fields.gid !== undefined ? Number(fields.gid) : raw.gid,
        mtime: fields.mtime !== undefined ? Math.floor(Number(fields.mtime)) : raw.mtime,
        linkname: fields.linkpath ?? longLink ?? raw.linkname,
        uname: fields.uname ?? raw.uname,
        gname: fields.gname ?? raw.gname,
        devmajor: raw.devmajor,
        devminor: raw.devminor,
      };
      // Links, devices and directories carry no data whatever their size field says.
      const dataSize = entry.type === "file" || entry.type === "other" ? entry.size : 0;
      this.#remaining = dataSize;
      this.#padding = (block - (dataSize % block)) % block;
      return entry;
    }
  }

  /** The current entry's data, in chunks; each chunk is the caller's to keep. */
  async *data(): AsyncGenerator<Uint8Array> {
    while (this.#remaining > 0) {
      const chunk = await this.#read(this.#remaining);
      if (chunk === null) throw new TarFormatError("tar: archive ends inside an entry");
      this.#remaining -= chunk.length;
      yield chunk;
    }
  }

  /** The current entry's data whole; refuses entries past `limit` bytes. */
  async readData(limit: number): Promise<Uint8Array> {
    if (this.#remaining > limit) {
      throw new TarFormatError(`tar: entry of ${this.#remaining} bytes is larger than ${limit}`);
    }
    const chunks: Uint8Array[] = [];
    for await (const chunk of this.data()) chunks.push(chunk);
    return concatBytes(chunks);
  }

  async #read(max: number): Promise<Uint8Array | null> {
    if (this.#buffered.length > 0) {
      const out = this.#buffered.subarray(0, max);
      this.#buffered = this.#buffered.subarray(out.length);
      return out;
    }
    return await this.#source.read(max);
  }

  /** Exactly n bytes; null only when `atBoundary` and the source ended before any. */
  async #readExact(n: number, atBoundary: boolean): Promise<Uint8Array | null> {
    const chunks: Uint8Array[] = [];
    let have = 0;
    while (have < n) {
      const chunk = await this.#read(n - have);
      if (chunk === null) {
        if (have === 0 && atBoundary) return null;
        throw new TarFormatError("tar: archive is cut short");
      }
      chunks.push(chunk);
      have += chunk.length;
    }
    return chunks.length === 1 ? chunks[0]! : concatBytes(chunks, n);
  }

  async #discard(n: number): Promise<void> {
    if (n === 0) return;
    const fromBuffer = Math.min(n, this.#buffered.length);
    this.#buffered = this.#buffered.subarray(fromBuffer);
    let left = n - fromBuffer;
    if (left === 0) return;
    if (this.#source.skip !== undefined) {
      if (!(await this.#source.skip(left))) throw new TarFormatError("tar: archive is cut short");
      return;
    }
    while (left > 0) {
      const chunk = await this.#source.read(Math.min(left, 1 << 20));
      if (chunk === null) throw new TarFormatError("tar: archive is cut short");
      left -= chunk.length;
    }
  }
}

interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  flag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function parseHeader(header: Uint8Array): RawHeader {
  let sum = 0;
  for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  const stored = parseNumber(header.subarray(148, 156));
  if (stored !== sum) {
    throw new TarFormatError("tar: header checksum mismatch (not a tar archive?)");
  }
  const magic = decoder.decode(header.subarray(257, 263));
  const name = cString(header.subarray(0, 100));
  const prefix = magic.startsWith("ustar") ? cString(header.subarray(345, 500)) : "";
  return {
    name: prefix === "" ? name : `${prefix}/${name}`,
    mode: parseNumber(header.subarray(100, 108)),
    uid: parseNumber(header.subarray(108, 116)),
    gid: parseNumber(header.subarray(116, 124)),
    size: parseNumber(header.subarray(124, 136)),
    mtime: parseNumber(header.subarray(136, 148)),
    flag: String.fromCharCode(header[156]!) === "\0" ? "0" : String.fromCharCode(header[156]!),
    linkname: cString(header.subarray(157, 257)),
    uname: cString(header.subarray(265, 297)),
    gname: cString(header.subarray(297, 329)),
    devmajor: parseNumber(header.subarray(329, 337)),
    devminor: parseNumber(header.subarray(337, 345)),
  };
}

/** An octal field, or GNU's base-256 form (high bit set) for large values. */
function parseNumber(field: Uint8Array): number {
  if (field.length > 0 && (field[0]! & 0x80) !== 0) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = cString(field).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`tar: bad number field "${text}"`);
  return parseInt(text, 8);
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end === -1 ? bytes : bytes.subarray(0, end));
}

function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space === -1) break;
    const length = Number(decoder.decode(data.subarray(offset, space)));
    if (!Number.isInteger(length) || length <= 0) throw new TarFormatError("tar: bad pax record");
    const record = decoder.decode(data.subarray(space + 1, offset + length - 1));
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    offset += length;
  }
  return out;
}

function typeOf(flag: string): TarType {
  switch (flag) {
    case "0":
    case "7":
      return "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
      return "chardev";
    case "4":
      return "blockdev";
    case "5":
      return "directory";
    case "6":
      return "fifo";
    default:
      return "other";
  }
}

function stripDotSlash(name: string): string {
  let out = name;
  while (out.startsWith("./")) out = out.slice(2);
  return out;
}
