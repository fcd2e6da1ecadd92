/**
 * HPACK (RFC 7541): the decoder keeps the peer's dynamic table in step with every header block
 * it sends; the encoder only emits static-table references and literals without indexing, so it
 * keeps no table of its own and no state but a pending size update.
 *
 * Header names and values are byte strings; they cross as JavaScript strings with one char per
 * byte (latin1), which is lossless and what HTTP field values are.
 */
import { ConnectionError, ErrorCode } from "./errors.ts";
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from "./huffman.ts";

/** One header field: [name, value]. */
export type HeaderField = [name: string, value: string];

/** RFC 7541 Appendix A, index 1 to 61. */
const STATIC_TABLE: readonly HeaderField[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** The table size both sides start with (SETTINGS_HEADER_TABLE_SIZE's default). */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;
// Per RFC 7541 §4.1 an entry costs its name and value lengths plus 32.
const ENTRY_OVERHEAD = 32;
// No sane header block encodes an integer this large; it also keeps the arithmetic exact.
const MAX_INTEGER = 2 ** 31 - 1;

const compressionError = (message: string) =>
  new ConnectionError(ErrorCode.COMPRESSION_ERROR, message);

/** The header fields of one block, or a note that they were over the size limit. */
export interface DecodedBlock {
  headers: HeaderField[];
  /** Size (RFC 7541 §4.1) of the whole list, counted even when it was too large to keep. */
  size: number;
  /** True when the list exceeded `maxListSize`: `headers` is then incomplete. */
  tooLarge: boolean;
}

/** Decodes the header blocks of one connection, in the order they arrive. */
export class HpackDecoder {
  /** Newest entry last. */
  #entries: HeaderField[] = [];
  #entrySizes: number[] = [];
  #size = 0;
  #maxSize: number;
  readonly #settingsLimit: number;

  /** `limit`: the SETTINGS_HEADER_TABLE_SIZE we announced; size updates may not exceed it. */
  constructor(limit = DEFAULT_HEADER_TABLE_SIZE) {
    this.#settingsLimit = limit;
    this.#maxSize = limit;
  }

  /** Current dynamic table size in RFC 7541 units (for tests and diagnostics). */
  get tableSize(): number {
    return this.#size;
  }

  /**
   * Decodes one complete header block. Fields past `maxListSize` are not kept, but the block is
   * still decoded to the end so the dynamic table stays in step with the peer's.
   * Throws a ConnectionError (COMPRESSION_ERROR) on any malformed representation.
   */
  decode(block: Uint8Array, maxListSize = Infinity): DecodedBlock {
    const headers: HeaderField[] = [];
    let size = 0;
    let tooLarge = false;
    let position = 0;
    let fieldsSeen = false;
    const emit = (name: string, value: string) => {
      fieldsSeen = true;
      size += name.length + value.length + ENTRY_OVERHEAD;
      if (size > maxListSize) tooLarge = true;
      if (!tooLarge) headers.push([name, value]);
    };
    const integer = (prefixBits: number): number => {
      const [value, next] = decodeInteger(block, position, prefixBits);
      position = next;
      return value;
    };
    const string = (): string => {
      if (position >= block.length) throw compressionError("Header block ends inside a field");
      const huffman = (block[position]! & 0x80) !== 0;
      const length = integer(7);
      if (position + length > block.length) {
        throw compressionError("Header string runs past the end of the block");
      }
      const raw = block.subarray(position, position + length);
      position += length;
      return latin1(huffman ? huffmanDecode(raw) : raw);
    };

    while (position < block.length) {
      const first = block[position]!;
      if (first & 0x80) { // indexed field
        const [name, value] = this.#field(integer(7));
        emit(name, value);
      } else if (first & 0x40) { // literal with incremental indexing
        const index = integer(6);
        const name = index === 0 ? string() : this.#field(index)[0];
        const value = string();
        this.#insert(name, value);
        emit(name, value);
      } else if (first & 0x20) { // dynamic table size update
        if (fieldsSeen) {
          throw compressionError("Dynamic table size update after a header field");
        }
        const max = integer(5);
        if (max > this.#settingsLimit) {
          throw compressionError(
            `Dynamic table size update to ${max} exceeds the limit of ${this.#settingsLimit}`,
          );
        }
        this.#maxSize = max;
        this.#evict(0);
      } else { // literal without indexing (0000) or never indexed (0001)
        const index = integer(4);
        const name = index === 0 ? string() : this.#field(index)[0];
        emit(name, string());
      }
    }
    return { headers, size, tooLarge };
  }

  #field(index: number): HeaderField {
    if (index === 0) throw compressionError("Header field index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const entry = this.#entries[this.#entries.length - 1 - (index - STATIC_TABLE.length - 1)];
    if (entry === undefined) {
      throw compressionError(`Header field index ${index} is not in the table`);
    }
    return entry;
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    this.#evict(Math.min(size, this.#maxSize + 1));
    if (size > this.#maxSize) return;
    this.#entries.push([name, value]);
    this.#entrySizes.push(size);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more fits. */
  #evict(room: number): void {
    let drop = 0;
    while (this.#size + room > this.#maxSize && drop < this.#entries.length) {
      this.#size -= this.#entrySizes[drop]!;
      drop++;
    }
    if (drop > 0) {
      this.#entries.splice(0, drop);
      this.#entrySizes.splice(0, drop);
    }
  }
}

/** Encodes header blocks for one connection. */
export class HpackEncoder {
  // We never add entries, so the table size the peer's decoder holds us to only matters when
  // the peer lowers it below what we last announced: then the next block must announce it
  // (RFC 7541 §4.2). Raising it needs no announcement; we just keep the smaller one.
  #announced = DEFAULT_HEADER_TABLE_SIZE;
  #pendingUpdate: number | undefined;

  /** The peer's SETTINGS_HEADER_TABLE_SIZE: a smaller one is announced in the next block. */
  setPeerTableSize(limit: number): void {
    if (limit < (this.#pendingUpdate ?? this.#announced)) this.#pendingUpdate = limit;
  }

  /** One header block with every field in `headers`, in order. */
  encode(headers: readonly HeaderField[]): Uint8Array {
    const out = new ByteWriter();
    if (this.#pendingUpdate !== undefined) {
      out.integer(this.#pendingUpdate, 5, 0x20);
      this.#announced = this.#pendingUpdate;
      this.#pendingUpdate = undefined;
    }
    for (const [name, value] of headers) {
      const exact = staticIndex.get(`${name}\0${value}`);
      if (exact !== undefined) {
        out.integer(exact, 7, 0x80);
        continue;
      }
      const nameIndex = staticNameIndex.get(name);
      if (nameIndex !== undefined) {
        out.integer(nameIndex, 4, 0x00);
      } else {
        out.byte(0x00);
        out.string(name);
      }
      out.string(value);
    }
    return out.bytes();
  }
}

const staticIndex = new Map(STATIC_TABLE.map(([name, value], i) => [`${name}\0${value}`, i + 1]));
const staticNameIndex = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!staticNameIndex.has(name)) staticNameIndex.set(name, i + 1);
});

/** Reads an HPACK integer with an N-bit prefix at `offset`; returns it and the next offset. */
export function decodeInteger(
  block: Uint8Array,
  offset: number,
  prefixBits: number,
): [value: number, next: number] {
  const mask = (1 << prefixBits) - 1;
  let value = block[offset]! & mask;
  let position = offset + 1;
  if (value < mask) return [value, position];
  let scale = 1;
  for (;;) {
    if (position >= block.length) throw compressionError("Header block ends inside an integer");
    const byte = block[position++]!;
    value += (byte & 0x7f) * scale;
    if (value > MAX_INTEGER) throw compressionError("Header block integer is too large");
    if ((byte & 0x80) === 0) return [value, position];
    scale *= 128;
  }
}

/** One char per byte. */
function latin1(bytes: Uint8Array): string {
  let text = "";
  // Chunked: String.fromCharCode takes its bytes as arguments. `apply` takes the typed array
  // as it is; a spread would first build an array through an iterator, for every header.
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return text;
}

/** Bytes of a latin1 string; chars above 0xff are a programming mistake. */
function latin1Bytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) {
      throw new RangeError(`Header text has a char above 0xff: ${JSON.stringify(text)}`);
    }
    bytes[i] = code;
  }
  return bytes;
}

/** A growable byte buffer for one header block. */
class ByteWriter {
  #buffer = new Uint8Array(128);
  #length = 0;

  byte(value: number): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
  }

  /** An HPACK integer with an N-bit prefix, the prefix's high bits set from `flags`. */
  integer(value: number, prefixBits: number, flags: number): void {
    const mask = (1 << prefixBits) - 1;
    if (value < mask) return this.byte(flags | value);
    this.byte(flags | mask);
    let rest = value - mask;
    while (rest >= 128) {
      this.byte((rest % 128) | 0x80);
      rest = Math.floor(rest / 128);
    }
    this.byte(rest);
  }

  /** A string literal, Huffman-coded when that is shorter. */
  string(text: string): void {
    const raw = latin1Bytes(text);
    const huffmanLength = huffmanEncodedLength(raw);
    if (huffmanLength < raw.length) {
      this.integer(huffmanLength, 7, 0x80);
      this.#append(huffmanEncode(raw));
    } else {
      this.integer(raw.length, 7, 0x00);
      this.#append(raw);
    }
  }

  bytes(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }

  #append(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  #reserve(more: number): void {
    if (this.#length + more <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + more));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }
}
