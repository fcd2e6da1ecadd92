/**
 * The HPACK Huffman code (RFC 7541 Appendix B). The code is canonical: codes of equal length
 * are consecutive and ordered by symbol, so the 257 code lengths below define it completely
 * and the codes are rebuilt from them at load time.
 */
import { ConnectionError, ErrorCode } from "./errors.ts";

/** Code length in bits of each symbol, 16 a line; symbol 256 is EOS. */
const CODE_LENGTHS = [
  "13 23 28 28 28 28 28 28 28 24 30 28 28 30 28 28", // 0-15
  "28 28 28 28 28 28 30 28 28 28 28 28 28 28 28 28", // 16-31
  "6 10 10 12 13 6 8 11 10 10 8 11 8 6 6 6", // 32-47
  "5 5 5 6 6 6 6 6 6 6 7 8 15 6 12 10", // 48-63
  "13 6 7 7 7 7 7 7 7 7 7 7 7 7 7 7", // 64-79
  "7 7 7 7 7 7 7 7 8 7 8 13 19 13 14 6", // 80-95
  "15 5 6 5 6 5 6 6 6 5 7 7 6 6 6 5", // 96-111
  "6 7 6 5 5 6 7 7 7 7 7 15 11 14 13 28", // 112-127
  "20 22 20 20 22 22 22 23 22 23 23 23 23 23 24 23", // 128-143
  "24 24 22 23 24 23 23 23 23 21 22 23 22 23 23 24", // 144-159
  "22 21 20 22 22 23 23 21 23 22 22 24 21 22 23 23", // 160-175
  "21 21 22 21 23 22 23 23 20 22 22 22 23 22 22 23", // 176-191
  "26 26 20 19 22 23 22 25 26 26 26 27 27 26 24 25", // 192-207
  "19 21 26 27 27 26 27 24 21 21 26 26 28 27 27 27", // 208-223
  "20 24 20 21 22 21 21 23 22 22 25 25 24 24 26 23", // 224-239
  "26 27 26 26 27 27 27 27 27 28 27 27 27 27 27 26", // 240-255
  "30", // 256 (EOS)
].join(" ").split(" ").map(Number);

const EOS = 256;
const MAX_LENGTH = 30;

const codes = new Uint32Array(257);
// For each length: the first code of that length, how many there are, and where their
// symbols start in `symbolsByCode`.
const firstCode = new Int32Array(MAX_LENGTH + 1);
const countOf = new Int32Array(MAX_LENGTH + 1);
const offsetOf = new Int32Array(MAX_LENGTH + 1);
const symbolsByCode = new Uint16Array(257);
{
  const order = [...CODE_LENGTHS.keys()].sort((a, b) =>
    CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b
  );
  let code = 0;
  let length = CODE_LENGTHS[order[0]!]!;
  order.forEach((symbol, position) => {
    const symbolLength = CODE_LENGTHS[symbol]!;
    if (position > 0) {
      code++;
      while (length < symbolLength) {
        code <<= 1;
        length++;
        firstCode[length] = code;
        offsetOf[length] = position;
      }
    }
    codes[symbol] = code;
    countOf[length]!++;
    symbolsByCode[position] = symbol;
  });
}

/** Decodes a Huffman-coded string literal to its bytes; rejects EOS and malformed padding. */
export function huffmanDecode(input: Uint8Array): Uint8Array {
  // Each symbol takes at least 5 bits, so the output is at most 8/5 of the input.
  const out = new Uint8Array(Math.ceil((input.length * 8) / 5));
  let written = 0;
  let code = 0;
  let length = 0;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      length++;
      const index = code - firstCode[length]!;
      if (index >= 0 && index < countOf[length]!) {
        const symbol = symbolsByCode[offsetOf[length]! + index]!;
        if (symbol === EOS) {
          throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, "Huffman string contains EOS");
        }
        out[written++] = symbol;
        code = 0;
        length = 0;
      } else if (length === MAX_LENGTH) {
        throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, "Huffman string has no valid code");
      }
    }
  }
  // Padding: fewer than 8 bits, all ones (the most significant bits of EOS).
  if (length > 7 || code !== (1 << length) - 1) {
    throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, "Huffman string is badly padded");
  }
  return out.subarray(0, written);
}

/** Length in bytes of `input` Huffman-coded. */
export function huffmanEncodedLength(input: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < input.length; i++) bits += CODE_LENGTHS[input[i]!]!;
  return Math.ceil(bits / 8);
}

/** Huffman-codes `input`, padding the last byte with ones. */
export function huffmanEncode(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(input));
  let written = 0;
  // Pending bits as a plain number: at most 7 + 30 of them, well within 2^53.
  let pending = 0;
  let pendingBits = 0;
  for (let i = 0; i < input.length; i++) {
    const symbol = input[i]!;
    const length = CODE_LENGTHS[symbol]!;
    pending = pending * 2 ** length + codes[symbol]!;
    pendingBits += length;
    while (pendingBits >= 8) {
      pendingBits -= 8;
      const shift = 2 ** pendingBits;
      out[written++] = Math.floor(pending / shift);
      pending %= shift;
    }
  }
  if (pendingBits > 0) {
    out[written++] = pending * 2 ** (8 - pendingBits) + (2 ** (8 - pendingBits) - 1);
  }
  return out;
}
