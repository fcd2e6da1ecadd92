/**
 * gRPC's own encodings on top of HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md): `grpc-timeout`,
 * the percent-encoded `grpc-message`, and length-prefixed messages in DATA.
 */
import { InternalError, RuntimeError } from "../../lib/errors.ts";

const TIMEOUT_UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** `grpc-timeout` in milliseconds (1 to 8 digits and a unit: H M S m u n); undefined if malformed. */
export function parseGrpcTimeout(value: string): number | undefined {
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (match === null) return undefined;
  return Number(match[1]) * TIMEOUT_UNIT_MS[match[2]!]!;
}

const encoder = new TextEncoder();
const HEX = "0123456789ABCDEF";

/** `grpc-message` form: UTF-8, with '%' and every byte outside printable ASCII as %XX. */
export function percentEncode(text: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(text)) return text;
  let out = "";
  for (const byte of encoder.encode(text)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25
      ? String.fromCharCode(byte)
      : `%${HEX[byte >> 4]}${HEX[byte & 0xf]}`;
  }
  return out;
}

/** Decodes `grpc-message`; malformed escapes are kept as they are, as the spec asks. */
export function percentDecode(text: string): string {
  if (!text.includes("%")) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const escape = /^%[0-9A-Fa-f]{2}$/.test(text.slice(i, i + 3));
    if (escape) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(text.charCodeAt(i) & 0xff);
    }
  }
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

/** Prefix length: 1-byte compressed flag, 4-byte big-endian length. */
export const MESSAGE_PREFIX_BYTES = 5;

/** One message as it goes into DATA: prefix and bytes in one buffer. */
export function frameMessage(message: Uint8Array): Uint8Array {
  const framed = new Uint8Array(MESSAGE_PREFIX_BYTES + message.length);
  new DataView(framed.buffer).setUint32(1, message.length);
  framed.set(message, MESSAGE_PREFIX_BYTES);
  return framed;
}

/** The prefix alone, for a large message sent without copying it. */
export function messagePrefix(length: number): Uint8Array {
  const prefix = new Uint8Array(MESSAGE_PREFIX_BYTES);
  new DataView(prefix.buffer).setUint32(1, length);
  return prefix;
}

/**
 * Cuts length-prefixed messages out of DATA payloads, however the payloads split them: a
 * message may span frames, and a frame may hold several messages.
 */
export class MessageReader {
  readonly #maxMessageBytes: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;

  constructor(maxMessageBytes: number) {
    this.#maxMessageBytes = maxMessageBytes;
  }

  /** Bytes received and not yet returned as a message. */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /**
   * The next complete message, or undefined until more arrives. Throws Unimplemented for a
   * compressed message (we accept only identity), ResourceExhausted past the size limit.
   */
  next(): Uint8Array | undefined {
    if (this.#buffered < MESSAGE_PREFIX_BYTES) return undefined;
    const prefix = this.#peek(MESSAGE_PREFIX_BYTES);
    const flag = prefix[0]!;
    const length = new DataView(prefix.buffer, prefix.byteOffset).getUint32(1);
    if (flag === 1) {
      throw new RuntimeError(
        "Unimplemented",
        "Compressed messages are not supported: pve-cri accepts grpc-encoding identity only",
      );
    }
    if (flag !== 0) throw new InternalError(`Message has an invalid compressed flag: ${flag}`);
    if (length > this.#maxMessageBytes) {
      throw new RuntimeError(
        "ResourceExhausted",
        `Request message of ${length} bytes exceeds the limit of ${this.#maxMessageBytes} bytes`,
      );
    }
    if (this.#buffered < MESSAGE_PREFIX_BYTES + length) return undefined;
    this.#take(MESSAGE_PREFIX_BYTES);
    return this.#take(length);
  }

  /** The first `count` buffered bytes, without consuming them. */
  #peek(count: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= count) return first.subarray(0, count);
    return this.#join(count, false);
  }

  #take(count: number): Uint8Array {
    const first = this.#chunks[0];
    if (count === 0 || first === undefined) return new Uint8Array(0);
    if (first.length > count) {
      this.#chunks[0] = first.subarray(count);
      this.#buffered -= count;
      return first.subarray(0, count);
    }
    if (first.length === count) {
      this.#chunks.shift();
      this.#buffered -= count;
      return first;
    }
    return this.#join(count, true);
  }

  /** Copies the first `count` bytes out of several chunks, consuming them if asked. */
  #join(count: number, consume: boolean): Uint8Array {
    const joined = new Uint8Array(count);
    let offset = 0;
    let index = 0;
    while (offset < count) {
      const chunk = this.#chunks[index]!;
      const part = chunk.subarray(0, count - offset);
      joined.set(part, offset);
      offset += part.length;
      if (consume && part.length === chunk.length) {
        this.#chunks.splice(index, 1);
      } else if (consume) {
        this.#chunks[index] = chunk.subarray(part.length);
        index++;
      } else {
        index++;
      }
    }
    if (consume) this.#buffered -= count;
    return joined;
  }
}
