/**
 * RFC 7541 (HPACK) rules for a server, one test per rule, grouped by section, each driven from
 * the byte-level client: header blocks written byte by byte into HEADERS frames to a real CRI
 * server on a unix socket. A decoding error is a connection error COMPRESSION_ERROR (RFC 9113
 * §4.3); what the decoder keeps is seen through what the server then serves.
 */
import assert from "node:assert/strict";
import {
  encodeLiteralBlock,
  FRAME,
  grpcRequestHeaders,
  grpcStatus,
  H2Client,
} from "../../../_support/h2_client.ts";
import { serve } from "../_harness.ts";
import { callVersion, stillServes, Version, version } from "./_version.ts";

const COMPRESSION_ERROR = 9;
const HEADER_TABLE_SIZE = 0x1;

const bytes = (...parts: (number | number[] | Uint8Array)[]) =>
  Uint8Array.from(parts.flatMap((part) => typeof part === "number" ? [part] : [...part]));
const ascii = (text: string) => [...new TextEncoder().encode(text)];
/** A string literal without Huffman coding, its length under 127. */
const literal = (text: string) => [text.length, ...ascii(text)];
/** A Huffman-coded string literal of these code bytes. */
const huffman = (...code: number[]) => [0x80 | code.length, ...code];

/** A literal field with incremental indexing and a new name (§6.2.1). */
const indexed = (name: string, value: string) => bytes(0x40, literal(name), literal(value));
/** The gRPC request fields for Version as literals that touch no table (§6.2.2). */
const versionFields = () => encodeLiteralBlock(grpcRequestHeaders(Version.path));
/** Dynamic table index 62, the newest entry (§2.3.3), as an indexed field (§6.1). */
const NEWEST = 0xbe;

async function server() {
  return await serve({ runtime: { Version: version } });
}

/** `block` is a decoding error: GOAWAY COMPRESSION_ERROR; another connection is still served. */
async function decodingError(block: Uint8Array, before: Uint8Array[] = []): Promise<void> {
  await using h = await server();
  await using bystander = await H2Client.connect(h.socketPath);
  await using h2 = await H2Client.connect(h.socketPath);
  let streamId = 1;
  for (const earlier of before) {
    assert.equal(
      grpcStatus(await callVersion(h2, streamId, earlier)),
      "0",
      "the blocks before it decode",
    );
    streamId += 2;
  }
  h2.headerBlock(streamId, block, { endStream: true });
  assert.equal(await h2.goawayCode(), COMPRESSION_ERROR);
  await stillServes(bystander);
}

// ---- §2.3 Indexing Tables ----

Deno.test("RFC 7541 §2.3.3 an index past both tables is a decoding error", async () => {
  await decodingError(bytes(versionFields(), NEWEST));
});

Deno.test("RFC 7541 §2.3.3 dynamic indexes count from 62, newest first", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  // :path (static index 4) with a literal value, then another entry: :path is now index 63.
  const pathEntry = bytes(0x44, literal(Version.path));
  const fields = grpcRequestHeaders(Version.path).filter(([name]) => name !== ":path");
  assert.equal(
    grpcStatus(
      await callVersion(h2, 1, bytes(pathEntry, encodeLiteralBlock(fields), indexed("x-b", "2"))),
    ),
    "0",
  );
  // Only the right :path from the table reaches Version; any other is UNIMPLEMENTED.
  assert.equal(grpcStatus(await callVersion(h2, 3, bytes(0xbf, encodeLiteralBlock(fields)))), "0");
});

// ---- §4 Dynamic Table Management ----

Deno.test("RFC 7541 §4.1 an entry's size is its name, its value and 32", async () => {
  // A table of 64 holds "x-a: 1" (3 + 1 + 32 = 36) but not two of them.
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  assert.equal(
    grpcStatus(await callVersion(h2, 1, bytes(0x3f, 0x21, versionFields(), indexed("x-a", "1")))),
    "0",
  );
  assert.equal(
    grpcStatus(await callVersion(h2, 3, bytes(versionFields(), NEWEST))),
    "0",
    "it fits",
  );
  assert.equal(
    grpcStatus(await callVersion(h2, 5, bytes(versionFields(), indexed("x-c", "3"), 0xbe))),
    "0",
  );
  h2.headerBlock(7, bytes(0xbf), { endStream: true });
  assert.equal(await h2.goawayCode(), COMPRESSION_ERROR, "the first entry was evicted");
});

Deno.test("RFC 7541 §4.2 a size update after the first field of a block is a decoding error", async () => {
  await decodingError(bytes(versionFields(), 0x20));
});

Deno.test("RFC 7541 §4.2 after the client lowers SETTINGS_HEADER_TABLE_SIZE, the server's next block starts with a size update", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath, { settings: [[HEADER_TABLE_SIZE, 0]] });
  const response = await callVersion(h2, 1, versionFields());
  assert.equal(grpcStatus(response), "0");
  const [first] = response.frames.filter((frame) => frame.type === FRAME.HEADERS);
  assert.equal(first!.payload[0], 0x20, "a size update to 0 comes first");
  const again = await callVersion(h2, 3, versionFields());
  const [next] = again.frames.filter((frame) => frame.type === FRAME.HEADERS);
  assert.notEqual(next!.payload[0]! & 0xe0, 0x20, "and only once");
});

Deno.test("RFC 7541 §4.3 a size update evicts the entries that no longer fit", async () => {
  await decodingError(bytes(0x20, versionFields(), NEWEST), [
    bytes(versionFields(), indexed("x-a", "1")),
  ]);
});

Deno.test("RFC 7541 §4.4 an entry larger than the table empties it, and is not an error", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  assert.equal(
    grpcStatus(await callVersion(h2, 1, bytes(versionFields(), indexed("x-a", "1")))),
    "0",
  );
  const big = indexed("x-big", "x".repeat(100));
  // Table size 64 (kept "x-a: 1"), then an entry of 137: the table ends empty.
  assert.equal(grpcStatus(await callVersion(h2, 3, bytes(0x3f, 0x21, versionFields(), big))), "0");
  h2.headerBlock(5, bytes(NEWEST), { endStream: true });
  assert.equal(await h2.goawayCode(), COMPRESSION_ERROR);
});

// ---- §5 Primitive Type Representations ----

Deno.test("RFC 7541 §5.1 an integer past the implementation's limit is a decoding error", async () => {
  await decodingError(bytes(0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01));
});

Deno.test("RFC 7541 §5.1 a block that ends inside an integer is a decoding error", async () => {
  await decodingError(bytes(versionFields(), 0xff));
});

Deno.test("RFC 7541 §5.2 a string longer than the rest of the block is a decoding error", async () => {
  await decodingError(bytes(0x40, 0x0a, ascii("cus")));
});

Deno.test("RFC 7541 §5.2 a Huffman string holding EOS is a decoding error", async () => {
  await decodingError(bytes(0x00, huffman(0xff, 0xff, 0xff, 0xff), literal("v")));
});

Deno.test("RFC 7541 §5.2 Huffman padding longer than 7 bits is a decoding error", async () => {
  // "0" (00000), then 11 one bits.
  await decodingError(bytes(0x00, huffman(0x07, 0xff), literal("v")));
});

Deno.test("RFC 7541 §5.2 Huffman padding other than EOS's leading ones is a decoding error", async () => {
  // "0" (00000) padded with 000.
  await decodingError(bytes(0x00, huffman(0x00), literal("v")));
});

Deno.test("RFC 7541 §5.2 Huffman strings decode (padding of up to 7 one bits)", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  // "0" (00000 then 111 padding) as a name, added to the table, then found by index.
  assert.equal(
    grpcStatus(await callVersion(h2, 1, bytes(versionFields(), 0x40, huffman(0x07), literal("v")))),
    "0",
  );
  assert.equal(grpcStatus(await callVersion(h2, 3, bytes(versionFields(), NEWEST))), "0");
});

// ---- §6 Binary Format ----

Deno.test("RFC 7541 §6.1 an indexed field of index 0 is a decoding error", async () => {
  await decodingError(bytes(0x80));
});

Deno.test("RFC 7541 §6.2.1 a literal with incremental indexing is added to the table", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  assert.equal(
    grpcStatus(await callVersion(h2, 1, bytes(versionFields(), indexed("x-a", "1")))),
    "0",
  );
  assert.equal(grpcStatus(await callVersion(h2, 3, bytes(versionFields(), NEWEST))), "0");
});

Deno.test("RFC 7541 §6.2.2 a literal without indexing leaves the table as it was", async () => {
  await decodingError(bytes(NEWEST), [bytes(versionFields(), 0x00, literal("x-a"), literal("1"))]);
});

Deno.test("RFC 7541 §6.2.3 a never-indexed literal leaves the table as it was", async () => {
  await decodingError(bytes(NEWEST), [bytes(versionFields(), 0x10, literal("x-a"), literal("1"))]);
});

Deno.test("RFC 7541 §6.3 a size update above SETTINGS_HEADER_TABLE_SIZE is a decoding error", async () => {
  // 4097: 31 + 4066 (0xe2 0x1f), one past the 4096 the server announces.
  await decodingError(bytes(0x3f, 0xe2, 0x1f, versionFields()));
});

Deno.test("RFC 9113 §4.3 a block whose request is refused still updates the table", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  // A field list past the server's 64 KiB limit, an entry added after the limit is passed.
  const oversized = bytes(
    versionFields(),
    encodeLiteralBlock([["x-pad", "p".repeat(70_000)]]),
    indexed("x-a", "1"),
  );
  h2.headerBlock(1, oversized, { endStream: true, fragmentSize: 16_384 });
  assert.equal(grpcStatus(await h2.response(1)), "8", "RESOURCE_EXHAUSTED");
  assert.equal(grpcStatus(await callVersion(h2, 3, bytes(versionFields(), NEWEST))), "0");
});
