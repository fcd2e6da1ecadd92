import assert from "node:assert/strict";
import {
  decodeInteger,
  type HeaderField,
  HpackDecoder,
  HpackEncoder,
} from "../../../../adapters/cri/h2/hpack.ts";
import { huffmanDecode, huffmanEncode } from "../../../../adapters/cri/h2/huffman.ts";
import { ConnectionError, ErrorCode } from "../../../../adapters/cri/h2/errors.ts";

const hex = (text: string) => Uint8Array.from(text.match(/../g)!.map((b) => parseInt(b, 16)));
const toHex = (bytes: Uint8Array) =>
  [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
const ascii = (text: string) => new TextEncoder().encode(text);

const compressionError = (error: unknown) =>
  error instanceof ConnectionError && error.h2Code === ErrorCode.COMPRESSION_ERROR;

// RFC 7541 Appendix C.3 (and C.4 with Huffman): three requests on one connection.
const requests: HeaderField[][] = [
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
  [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ],
  [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ],
];

// RFC 7541 Appendix C.5 (and C.6 with Huffman): three responses, a 256-byte table that evicts.
const responses: HeaderField[][] = [
  [
    [":status", "302"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ],
  [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ],
  [
    [":status", "200"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
    ["location", "https://www.example.com"],
    ["content-encoding", "gzip"],
    ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
  ],
];

function decodesInSequence(
  decoder: HpackDecoder,
  blocks: string[],
  expected: HeaderField[][],
  tableSizes: number[],
) {
  blocks.forEach((block, i) => {
    assert.deepEqual(decoder.decode(hex(block)).headers, expected[i], `block ${i + 1}`);
    assert.equal(decoder.tableSize, tableSizes[i], `table size after block ${i + 1}`);
  });
}

Deno.test("HPACK decodes the RFC 7541 request examples, without and with Huffman coding", () => {
  decodesInSequence(
    new HpackDecoder(),
    [
      "828684410f7777772e6578616d706c652e636f6d",
      "828684be58086e6f2d6361636865",
      "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
    ],
    requests,
    [57, 110, 164],
  );
  decodesInSequence(
    new HpackDecoder(),
    [
      "828684418cf1e3c2e5f23a6ba0ab90f4ff",
      "828684be5886a8eb10649cbf",
      "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
    ],
    requests,
    [57, 110, 164],
  );
});

Deno.test("HPACK decodes the RFC 7541 response examples, evicting from a 256-byte table", () => {
  decodesInSequence(
    new HpackDecoder(256),
    [
      "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
      "4803333037c1c0bf",
      "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
    ],
    responses,
    [222, 222, 215],
  );
  decodesInSequence(
    new HpackDecoder(256),
    [
      "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
      "4883640effc1c0bf",
      "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
    ],
    responses,
    [222, 222, 215],
  );
});

Deno.test("HPACK decodes the RFC 7541 literal examples and integers", () => {
  const decode = (block: string) => new HpackDecoder().decode(hex(block)).headers;
  assert.deepEqual(decode("400a637573746f6d2d6b65790d637573746f6d2d686561646572"), [[
    "custom-key",
    "custom-header",
  ]]);
  assert.deepEqual(decode("040c2f73616d706c652f70617468"), [[":path", "/sample/path"]]);
  assert.deepEqual(decode("100870617373776f726406736563726574"), [["password", "secret"]]);
  assert.deepEqual(decode("82"), [[":method", "GET"]]);
  assert.deepEqual(decodeInteger(hex("0a"), 0, 5), [10, 1]);
  assert.deepEqual(decodeInteger(hex("1f9a0a"), 0, 5), [1337, 3]);
  assert.deepEqual(decodeInteger(hex("2a"), 0, 8), [42, 1]);
});

Deno.test("Huffman coding matches the RFC 7541 examples and round-trips every byte", () => {
  assert.equal(toHex(huffmanEncode(ascii("www.example.com"))), "f1e3c2e5f23a6ba0ab90f4ff");
  assert.equal(toHex(huffmanEncode(ascii("no-cache"))), "a8eb10649cbf");
  assert.equal(toHex(huffmanEncode(ascii("custom-value"))), "25a849e95bb8e8b4bf");
  assert.equal(toHex(huffmanEncode(ascii("302"))), "6402");
  const every = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(huffmanDecode(huffmanEncode(every)), every);
  const reversed = every.slice().reverse();
  assert.deepEqual(huffmanDecode(huffmanEncode(reversed)), reversed);
});

Deno.test("HPACK size updates shrink and evict, and may only come first", () => {
  const decoder = new HpackDecoder();
  decoder.decode(hex("828684410f7777772e6578616d706c652e636f6d"));
  assert.equal(decoder.tableSize, 57);
  assert.deepEqual(decoder.decode(hex("20")).headers, []); // size 0: evicts everything
  assert.equal(decoder.tableSize, 0);
  assert.throws(() => decoder.decode(hex("be")), compressionError);
  // Back to 4096: entries are kept again.
  decoder.decode(hex("3fe11f400a637573746f6d2d6b65790c637573746f6d2d76616c7565"));
  assert.equal(decoder.tableSize, 54);
  assert.deepEqual(decoder.decode(hex("be")).headers, [["custom-key", "custom-value"]]);
});

Deno.test("HPACK keeps decoding past the list limit so the table stays in step", () => {
  const decoder = new HpackDecoder();
  const big = "x".repeat(100);
  const encoder = new HpackEncoder();
  // A literal with incremental indexing, built by hand: name and value without Huffman.
  const literal = Uint8Array.from([0x40, 3, ...ascii("big"), 100, ...ascii(big)]);
  const block = Uint8Array.from([...literal, ...encoder.encode([["small", "1"]])]);
  const result = decoder.decode(block, 64);
  assert.equal(result.tooLarge, true);
  assert.deepEqual(result.headers, []);
  assert.equal(decoder.tableSize, 3 + 100 + 32);
  assert.deepEqual(decoder.decode(hex("be")).headers, [["big", big]]);
});

Deno.test("the HPACK encoder's blocks decode to the same fields, static entries indexed", () => {
  const encoder = new HpackEncoder();
  const fields: HeaderField[] = [
    [":status", "200"],
    ["content-type", "application/grpc"],
    ["grpc-status", "13"],
    ["grpc-message", "Container %22abc%22: not found"],
    ["x-latin1", "caf\u00e9"],
  ];
  const block = encoder.encode(fields);
  assert.equal(block[0], 0x88); // :status 200 is static index 8
  assert.deepEqual(new HpackDecoder().decode(block).headers, fields);
  assert.throws(() => encoder.encode([["x", "\u20ac"]]), RangeError);
});

Deno.test("the HPACK encoder announces a smaller peer table size in its next block only", () => {
  const encoder = new HpackEncoder();
  encoder.setPeerTableSize(8192); // larger: nothing to announce
  assert.equal(encoder.encode([[":status", "200"]])[0], 0x88);
  encoder.setPeerTableSize(100);
  encoder.setPeerTableSize(0);
  encoder.setPeerTableSize(50);
  const block = encoder.encode([[":status", "200"]]);
  assert.equal(toHex(block), "2088"); // the smallest (0), then the field
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(block).headers, [[":status", "200"]]);
  assert.equal(toHex(encoder.encode([[":status", "200"]])), "88");
});
