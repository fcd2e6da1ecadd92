/**
 * RFC 9113's rules for a server, one test per rule, grouped by section, each driven frame by
 * frame from the byte-level client against a real CRI server on a unix socket. The stream
 * rules are tried on the streams an external conformance run found wanting: a request to a
 * path pve-cri does not serve, which it answers at once (Trailers-Only) before the client has
 * ended its side.
 */
import assert from "node:assert/strict";
import type { UnaryHandler } from "../../../../adapters/cri/rpc.ts";
import {
  encodeLiteralBlock,
  FLAG,
  FRAME,
  grpcMessage,
  grpcRequestHeaders,
  grpcStatus,
  H2Client,
} from "../../../_support/h2_client.ts";
import { codec, serve } from "../_harness.ts";
import { stillServes, Version, version } from "./_version.ts";

const ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, FLOW_CONTROL_ERROR: 3, STREAM_CLOSED: 5 };
const REFUSED_STREAM = 7;
const UNSERVED = "/runtime.v1.RuntimeService/NoSuchMethod";
/** A handler that answers only when the test lets it: its stream stays open meanwhile. */
function held() {
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  const handler: UnaryHandler = () => released.then(() => ({}));
  return { handler, release };
}

async function server(handlers: Record<string, UnaryHandler> = {}) {
  return await serve({ runtime: { Version: version, ...handlers } });
}

/** The code of the RST_STREAM the server sends on `streamId`. */
async function resetCode(h2: H2Client, streamId: number): Promise<number> {
  const [frame] = (await h2.until((f) => f.type === FRAME.RST_STREAM && f.streamId === streamId))
    .slice(-1);
  return new DataView(frame!.payload.buffer, frame!.payload.byteOffset).getUint32(0);
}

/** A request to a path pve-cri does not serve, not ended: answered at once, UNIMPLEMENTED. */
async function answeredAtOnce(h2: H2Client, streamId: number): Promise<void> {
  h2.headers(streamId, grpcRequestHeaders(UNSERVED));
  const response = await h2.response(streamId);
  assert.equal(grpcStatus(response), "12");
  assert.equal(response.rstCode, undefined, "no RST_STREAM: the stream is half-closed (local)");
}

// ---- §5.1 Stream States ----

Deno.test("RFC 9113 §5.1 half-closed (remote): DATA is a stream error STREAM_CLOSED", async () => {
  const { handler, release } = held();
  await using h = await server({ RunPodSandbox: handler });
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(codec("RunPodSandbox").path));
  h2.data(1, grpcMessage(new Uint8Array(0)), { endStream: true });
  h2.data(1, new Uint8Array(4));
  assert.equal(await resetCode(h2, 1), ERROR.STREAM_CLOSED);
  release();
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §5.1 half-closed (remote): HEADERS is a stream error STREAM_CLOSED", async () => {
  const { handler, release } = held();
  await using h = await server({ RunPodSandbox: handler });
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(codec("RunPodSandbox").path));
  h2.data(1, grpcMessage(new Uint8Array(0)), { endStream: true });
  h2.headers(1, [["x-late", "1"]], { endStream: true });
  assert.equal(await resetCode(h2, 1), ERROR.STREAM_CLOSED);
  release();
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §5.1 half-closed (remote): WINDOW_UPDATE and PRIORITY are accepted", async () => {
  const { handler, release } = held();
  await using h = await server({ RunPodSandbox: handler });
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(codec("RunPodSandbox").path));
  h2.data(1, grpcMessage(new Uint8Array(0)), { endStream: true });
  h2.windowUpdate(1, 1000);
  h2.frame(FRAME.PRIORITY, 0, 1, Uint8Array.of(0, 0, 0, 0, 16));
  release();
  const response = await h2.response(1);
  assert.equal(grpcStatus(response), "0");
  assert.equal(response.rstCode, undefined);
});

Deno.test("RFC 9113 §5.1 closed after the client's RST_STREAM: DATA is a stream error STREAM_CLOSED", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(Version.path));
  h2.rstStream(1, 8);
  h2.data(1, new Uint8Array(4));
  assert.equal(await resetCode(h2, 1), ERROR.STREAM_CLOSED);
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §5.1 closed after the client's RST_STREAM: HEADERS is a stream error STREAM_CLOSED", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(Version.path));
  h2.rstStream(1, 8);
  h2.headers(1, grpcRequestHeaders(Version.path), { endStream: true });
  assert.equal(await resetCode(h2, 1), ERROR.STREAM_CLOSED);
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §5.1 closed by both END_STREAMs: DATA is a stream error STREAM_CLOSED", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  await stillServes(h2, 1);
  h2.data(1, new Uint8Array(4));
  assert.equal(await resetCode(h2, 1), ERROR.STREAM_CLOSED);
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §5.1 closed by our RST_STREAM: frames the client sent meanwhile are ignored", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(Version.path));
  h2.windowUpdate(1, 0); // a stream error: the server resets stream 1
  assert.equal(await resetCode(h2, 1), ERROR.PROTOCOL_ERROR);
  h2.data(1, new Uint8Array(4)); // in flight when the reset was sent
  h2.data(1, new Uint8Array(4), { endStream: true });
  await stillServes(h2, 3);
  const later = h2.drain().filter((f) => f.streamId === 1);
  assert.deepEqual(later, [], "no second RST_STREAM");
});

Deno.test("RFC 9113 §5.1 a stream answered before the client ended it stays half-closed (local) until the client ends it", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  await answeredAtOnce(h2, 1);
  h2.data(1, new Uint8Array(4));
  h2.data(1, new Uint8Array(0), { endStream: true }); // the client ends its side: closed
  h2.data(1, new Uint8Array(4)); // now a closed stream
  assert.equal(await resetCode(h2, 1), ERROR.STREAM_CLOSED);
  await stillServes(h2, 3);
});

// ---- §5.1.1 Stream Identifiers ----

Deno.test("RFC 9113 §5.1.1 a new stream id below one the client used before is a connection error PROTOCOL_ERROR", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  await stillServes(h2, 5);
  h2.headers(3, grpcRequestHeaders(Version.path), { endStream: true });
  assert.equal(await h2.goawayCode(), ERROR.PROTOCOL_ERROR);
});

// ---- §5.1.2 Stream Concurrency ----

Deno.test("RFC 9113 §5.1.2 streams past the advertised SETTINGS_MAX_CONCURRENT_STREAMS are refused, half-closed ones counted", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  await h2.until((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
  const limit = h2.serverSettings.find(([id]) => id === 3)?.[1];
  assert.equal(limit, 1000, "SETTINGS_MAX_CONCURRENT_STREAMS is advertised");
  // Each is answered at once, and stays half-closed (local): still counted.
  for (let i = 0; i < limit; i++) h2.headers(1 + 2 * i, grpcRequestHeaders(UNSERVED));
  h2.headers(1 + 2 * limit, grpcRequestHeaders(UNSERVED));
  assert.equal(await resetCode(h2, 1 + 2 * limit), REFUSED_STREAM);
  // Ending one frees a place.
  h2.data(1, new Uint8Array(0), { endStream: true });
  await stillServes(h2, 3 + 2 * limit);
});

// ---- §5.3.1 Stream Dependencies ----

Deno.test("RFC 9113 §5.3.1 HEADERS that make a stream depend on itself: a stream error PROTOCOL_ERROR", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  const block = encodeLiteralBlock(grpcRequestHeaders(Version.path));
  const payload = new Uint8Array(5 + block.length);
  payload.set([0, 0, 0, 1, 16]);
  payload.set(block, 5);
  h2.frame(FRAME.HEADERS, FLAG.PRIORITY | FLAG.END_HEADERS, 1, payload);
  assert.equal(await resetCode(h2, 1), ERROR.PROTOCOL_ERROR);
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §5.3.1 PRIORITY making an open stream depend on itself: a stream error PROTOCOL_ERROR", async () => {
  const { handler, release } = held();
  await using h = await server({ RunPodSandbox: handler });
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(codec("RunPodSandbox").path));
  h2.frame(FRAME.PRIORITY, 0, 1, Uint8Array.of(0, 0, 0, 1, 16));
  assert.equal(await resetCode(h2, 1), ERROR.PROTOCOL_ERROR);
  release();
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §5.3.1 PRIORITY making a stream not yet opened depend on itself: a connection error PROTOCOL_ERROR (no RST_STREAM on an idle stream)", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  h2.frame(FRAME.PRIORITY, 0, 7, Uint8Array.of(0, 0, 0, 7, 16));
  assert.equal(await h2.goawayCode(), ERROR.PROTOCOL_ERROR);
});

// ---- §6.1 DATA ----

Deno.test("RFC 9113 §6.1 DATA on a stream id the client skipped (implicitly closed): a stream error STREAM_CLOSED", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  await stillServes(h2, 5); // 1 and 3 were never used: closed
  h2.data(3, new Uint8Array(4));
  assert.equal(await resetCode(h2, 3), ERROR.STREAM_CLOSED);
  await stillServes(h2, 7);
});

// ---- §6.9 WINDOW_UPDATE ----

Deno.test("RFC 9113 §6.9 a WINDOW_UPDATE of 0 on a stream: a stream error PROTOCOL_ERROR, also once answered", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  await answeredAtOnce(h2, 1);
  h2.windowUpdate(1, 0);
  assert.equal(await resetCode(h2, 1), ERROR.PROTOCOL_ERROR);
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §6.9.1 a stream's window pushed past 2^31-1: RST_STREAM FLOW_CONTROL_ERROR", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  await answeredAtOnce(h2, 1);
  h2.windowUpdate(1, 2 ** 31 - 1);
  h2.windowUpdate(1, 2 ** 31 - 1);
  assert.equal(await resetCode(h2, 1), ERROR.FLOW_CONTROL_ERROR);
  await stillServes(h2, 3);
});

// ---- §8.1 HTTP Message Framing ----

Deno.test("RFC 9113 §8.1 a second HEADERS without END_STREAM: a stream error PROTOCOL_ERROR", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  await answeredAtOnce(h2, 1);
  h2.headers(1, [["x-trailer", "1"]]);
  assert.equal(await resetCode(h2, 1), ERROR.PROTOCOL_ERROR);
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §8.1 a pseudo-header field in trailers: a stream error PROTOCOL_ERROR", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  await answeredAtOnce(h2, 1);
  h2.headers(1, [[":status", "200"]], { endStream: true });
  assert.equal(await resetCode(h2, 1), ERROR.PROTOCOL_ERROR);
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §8.1.1 DATA that differs from content-length: a stream error PROTOCOL_ERROR", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(Version.path, [["content-length", "10"]]));
  h2.data(1, new Uint8Array(4), { endStream: true });
  assert.equal(await resetCode(h2, 1), ERROR.PROTOCOL_ERROR);
  h2.headers(3, grpcRequestHeaders(Version.path, [["content-length", "2"]]));
  h2.data(3, new Uint8Array(4));
  assert.equal(await resetCode(h2, 3), ERROR.PROTOCOL_ERROR);
  await stillServes(h2, 5);
});

// ---- §8.2 HTTP Fields and §8.3 HTTP Control Data: each malformed request is a stream error ----

const malformed: [string, [string, string][]][] = (() => {
  const base = grpcRequestHeaders(Version.path);
  const without = (name: string) => base.filter(([n]) => n !== name);
  return [
    ["§8.2 a field name with uppercase letters", [...base, ["X-Upper", "1"]]],
    ["§8.2.1 a field name with a space", [...base, ["x name", "1"]]],
    ["§8.2.1 a field name with a colon inside", [...base, ["x:y", "1"]]],
    ["§8.2.1 a field value with NUL", [...base, ["x-a", "a\u0000b"]]],
    ["§8.2.1 a field value with CR", [...base, ["x-a", "a\rb"]]],
    ["§8.2.1 a field value with LF", [...base, ["x-a", "a\nb"]]],
    ["§8.2.1 a field value starting with a space", [...base, ["x-a", " a"]]],
    ["§8.2.1 a field value ending with a tab", [...base, ["x-a", "a\t"]]],
    ["§8.2.2 a connection-specific field", [...base, ["connection", "keep-alive"]]],
    ["§8.2.2 a transfer-encoding field", [...base, ["transfer-encoding", "chunked"]]],
    ["§8.2.2 te other than trailers", [...without("te"), ["te", "gzip"]]],
    ["§8.3 a pseudo-header after a regular field", [...base, [":authority", "late"]]],
    ["§8.3 an unknown pseudo-header", [[":protocol", "x"], ...base]],
    ["§8.3.1 a repeated pseudo-header", [[":path", "/x"], ...base]],
    ["§8.3.1 no :method", without(":method")],
    ["§8.3.1 no :scheme", without(":scheme")],
    ["§8.3.1 no :path", without(":path")],
    ["§8.3.1 an empty :path", [...without(":path"), [":path", ""]]],
    ["§8.3.2 a response pseudo-header in a request", [[":status", "200"], ...base]],
  ];
})();

for (const [rule, headers] of malformed) {
  Deno.test(`RFC 9113 ${rule}: a malformed request, a stream error PROTOCOL_ERROR`, async () => {
    await using h = await server();
    await using h2 = await H2Client.connect(h.socketPath);
    h2.headers(1, headers);
    h2.data(1, grpcMessage(Version.encodeRequest({})), { endStream: true });
    assert.equal(await resetCode(h2, 1), ERROR.PROTOCOL_ERROR);
    await stillServes(h2, 3);
  });
}

// ---- Connection errors, one rule each: GOAWAY with the code, and only that connection ends ----

const connectionErrors: [string, (h2: H2Client) => void, number][] = [
  ["§4.2 a frame over SETTINGS_MAX_FRAME_SIZE", (c) => c.data(1, new Uint8Array(16_385)), 6],
  ["§5.1.1 HEADERS on an even stream id", (c) => c.headers(2, grpcRequestHeaders(Version.path)), 1],
  ["§6.1 DATA on stream 0", (c) => c.data(0, new Uint8Array(4)), 1],
  ["§6.1 padding as long as the frame", (c) => {
    c.headers(1, grpcRequestHeaders(Version.path));
    c.frame(FRAME.DATA, FLAG.PADDED, 1, Uint8Array.of(5, 0, 0));
  }, 1],
  ["§6.2 a header block interrupted by another frame", (c) => {
    c.frame(FRAME.HEADERS, 0, 1, Uint8Array.of(0x83));
    c.ping(new Uint8Array(8));
  }, 1],
  ["§6.4 RST_STREAM on an idle stream", (c) => c.rstStream(99, 8), 1],
  ["§6.5 SETTINGS on a stream", (c) => c.frame(FRAME.SETTINGS, 0, 1), 1],
  [
    "§6.5 SETTINGS of a length not a multiple of 6",
    (c) => c.frame(FRAME.SETTINGS, 0, 0, new Uint8Array(5)),
    6,
  ],
  ["§6.5.2 SETTINGS_ENABLE_PUSH other than 0 or 1", (c) => c.settings([[2, 2]]), 1],
  ["§6.5.2 SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", (c) => c.settings([[4, 2 ** 31]]), 3],
  ["§6.5.2 SETTINGS_MAX_FRAME_SIZE below 16384", (c) => c.settings([[5, 100]]), 1],
  [
    "§6.6 PUSH_PROMISE from a client",
    (c) => c.frame(FRAME.PUSH_PROMISE, 4, 1, new Uint8Array(4)),
    1,
  ],
  ["§6.7 PING of a length other than 8", (c) => c.frame(FRAME.PING, 0, 0, new Uint8Array(7)), 6],
  ["§6.9 a connection WINDOW_UPDATE of 0", (c) => c.windowUpdate(0, 0), 1],
  ["§6.9.1 the connection window past 2^31-1", (c) => c.windowUpdate(0, 2 ** 31 - 1), 3],
  ["§6.10 CONTINUATION without HEADERS", (c) => c.frame(FRAME.CONTINUATION, 4, 1), 1],
  [
    "§4.3 (RFC 7541 §2.3.3) an HPACK index of 0",
    (c) => c.frame(FRAME.HEADERS, 5, 1, Uint8Array.of(0x80)),
    9,
  ],
  ["§5.1 DATA on an idle stream", (c) => c.data(1, new Uint8Array(4)), 1],
  ["§5.1 WINDOW_UPDATE on an idle stream", (c) => c.windowUpdate(1, 100), 1],
  ["§6.2 HEADERS on stream 0", (c) => c.headers(0, grpcRequestHeaders(Version.path)), 1],
  ["§6.2 HEADERS padding as long as the frame", (c) => {
    c.frame(FRAME.HEADERS, FLAG.PADDED | FLAG.END_HEADERS, 1, Uint8Array.of(4, 0x83, 0, 0));
  }, 1],
  ["§6.3 PRIORITY on stream 0", (c) => c.frame(FRAME.PRIORITY, 0, 0, new Uint8Array(5)), 1],
  ["§6.4 RST_STREAM on stream 0", (c) => c.rstStream(0, 8), 1],
  ["§6.4 RST_STREAM of a length other than 4", (c) => {
    c.headers(1, grpcRequestHeaders(Version.path));
    c.frame(FRAME.RST_STREAM, 0, 1, new Uint8Array(3));
  }, 6],
  ["§6.5 SETTINGS ACK with a payload", (c) => c.frame(FRAME.SETTINGS, 1, 0, new Uint8Array(6)), 6],
  ["§6.7 PING on a stream", (c) => c.frame(FRAME.PING, 0, 1, new Uint8Array(8)), 1],
  ["§6.8 GOAWAY on a stream", (c) => c.frame(FRAME.GOAWAY, 0, 1, new Uint8Array(8)), 1],
  ["§6.9 WINDOW_UPDATE of a length other than 4", (c) => {
    c.frame(FRAME.WINDOW_UPDATE, 0, 0, new Uint8Array(3));
  }, 6],
  ["§6.10 CONTINUATION on another stream than its HEADERS", (c) => {
    c.frame(FRAME.HEADERS, 0, 1, Uint8Array.of(0x83));
    c.frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 3, Uint8Array.of(0x86));
  }, 1],
];

for (const [rule, send, code] of connectionErrors) {
  Deno.test(`RFC 9113 ${rule}: a connection error, GOAWAY ${code}; other connections go on`, async () => {
    await using h = await server();
    await using bystander = await H2Client.connect(h.socketPath);
    await using h2 = await H2Client.connect(h.socketPath);
    send(h2);
    assert.equal(await h2.goawayCode(), code);
    await stillServes(bystander, 1);
  });
}

// ---- What a server must accept or ignore ----

Deno.test("RFC 9113 §6.3 PRIORITY of a length other than 5: a stream error FRAME_SIZE_ERROR", async () => {
  const { handler, release } = held();
  await using h = await server({ RunPodSandbox: handler });
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(codec("RunPodSandbox").path));
  h2.frame(FRAME.PRIORITY, 0, 1, new Uint8Array(4));
  assert.equal(await resetCode(h2, 1), 6);
  release();
  await stillServes(h2, 3);
});

Deno.test("RFC 9113 §5.5 a frame of an unknown type is ignored", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  h2.frame(0xfa, 0, 0, new Uint8Array(3));
  h2.frame(0xfa, 0xff, 1, new Uint8Array(3));
  await stillServes(h2, 1);
});

Deno.test("RFC 9113 §4.1 flags a frame type does not define are ignored", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  h2.frame(FRAME.PING, 0xfe, 0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  const [pong] = (await h2.until((f) => f.type === FRAME.PING)).slice(-1);
  assert.equal(pong!.flags, FLAG.ACK, "answered as a PING");
  assert.deepEqual([...pong!.payload], [1, 2, 3, 4, 5, 6, 7, 8]);
  await stillServes(h2, 1);
});

Deno.test("RFC 9113 §6.5.2 a setting of an unknown identifier is ignored, and the SETTINGS acknowledged", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath, { settings: [[0x99, 7]] });
  await h2.until((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0);
  await stillServes(h2, 1);
});

Deno.test("RFC 9113 §6.7 a PING with ACK is not answered", async () => {
  await using h = await server();
  await using h2 = await H2Client.connect(h.socketPath);
  h2.frame(FRAME.PING, FLAG.ACK, 0, new Uint8Array(8));
  h2.ping(Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9));
  const pings = (await h2.until((f) => f.type === FRAME.PING)).filter((f) => f.type === FRAME.PING);
  assert.deepEqual([...pings[0]!.payload], [9, 9, 9, 9, 9, 9, 9, 9], "only the second is answered");
});
