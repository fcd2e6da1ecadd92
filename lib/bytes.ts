/** Byte-buffer helpers shared by the transports, the simulator and their tests. */

/** The chunks joined into one new buffer; `length` when the caller already knows their sum. */
export function concatBytes(
  chunks: readonly Uint8Array[],
  length = chunks.reduce((sum, chunk) => sum + chunk.length, 0),
): Uint8Array {
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

/**
 * Where `needle` first occurs in `haystack` at or after `from`, or -1. Node's Buffer.indexOf
 * is JavaScript in Deno's compat layer (~150 MB/s here). This is Boyer-Moore-Horspool: on
 * data that does not look like the needle it steps nearly a needle's length at a time.
 */
export function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  const m = needle.length;
  if (m === 0) return from <= haystack.length ? from : -1;
  const last = m - 1;
  const skip = skipTable(needle);
  const lastByte = needle[last]!;
  for (let i = from + last; i < haystack.length;) {
    const byte = haystack[i]!;
    if (byte === lastByte) {
      let j = 1;
      while (j < m && haystack[i - j] === needle[last - j]) j++;
      if (j === m) return i - last;
    }
    i += skip[byte]!;
  }
  return -1;
}

const skipTables = new WeakMap<Uint8Array, Uint32Array>();

/** For each byte, how far the needle may move when the window's last byte is that byte. */
function skipTable(needle: Uint8Array): Uint32Array {
  let table = skipTables.get(needle);
  if (table !== undefined) return table;
  table = new Uint32Array(256).fill(needle.length);
  for (let k = 0; k < needle.length - 1; k++) table[needle[k]!] = needle.length - 1 - k;
  skipTables.set(needle, table);
  return table;
}
