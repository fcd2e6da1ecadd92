/**
 * The HTTP/2 layer seen from the wire: a byte-level client sends frames, good and bad, to a
 * real CRI server on a unix socket and checks every frame that comes back.
 */
import assert from "node:assert/strict";
import type { RpcContext, StreamHandler, UnaryHandler } from "../../../../adapters/cri/rpc.ts";
import { Http2Connection } from "../../../../adapters/cri/h2/connection.ts";
import { silentLogger } from "../../../../lib/log.ts";
import {
  encodeFrame,
  encodeLiteralBlock,
  field,
  FLAG,
  FRAME,
  grpcMessage,
  grpcRequestHeaders,
  H2Client,
  PREFACE,
} from "../../../_support/h2_client.ts";
import { Random } from "../../../_support/random.ts";
import { tempDir } from "../../../_support/temp_dir.ts";
import { codec, serve, sleep } from "../_harness.ts";
import { stillServes, Version, version } from "./_version.ts";
import { concatBytes } from "../../../../lib/bytes.ts";

const ERROR = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  ENHANCE_YOUR_CALM: 11,
};
const SETTING = { INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5 };

const ListContainers = codec("ListContainers");

/** N containers with enough fields to make the response large. */
const containers = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: `${i}`.padStart(64, "c"),
    pod_sandbox_id: "p".repeat(64),
    metadata: { name: `container-${i}`, attempt: 0 },
    image: { image: "docker.io/library/busybox:latest" },
    image_ref: "sha256:" + "a".repeat(64),
    state: "CONTAINER_RUNNING",
    labels: { "io.kubernetes.pod.name": `pod-${i}` },
  }));

/** Sends a whole unary request on `streamId`. */
function call(h2: H2Client, streamId: number, path: string, message: Uint8Array) {
  h2.headers(streamId, grpcRequestHeaders(path));
  h2.data(streamId, grpcMessage(message), { endStream: true });
}

/** The messages of a gRPC response body. */
function messages(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < body.length;) {
    const length = new DataView(body.buffer, body.byteOffset + offset).getUint32(1);
    out.push(body.subarray(offset + 5, offset + 5 + length));
    offset += 5 + length;
  }
  return out;
}

Deno.test("the server sends its SETTINGS, acks the client's, and answers PING with the same bytes", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath);
  const opaque = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  h2.ping(opaque);
  const frames = await h2.until((f) => f.type === FRAME.PING);
  const first = frames[0]!;
  assert.equal(first.type, FRAME.SETTINGS, "the server preface comes first");
  assert.deepEqual(h2.serverSettings, [[3, 1000], [4, 1024 * 1024], [6, 64 * 1024]]);
  assert.ok(frames.some((f) => f.type === FRAME.SETTINGS && f.flags === FLAG.ACK));
  const pong = frames.at(-1)!;
  assert.equal(pong.flags, FLAG.ACK);
  assert.deepEqual(pong.payload, opaque);
});

Deno.test("a unary call over raw frames: response headers, one message, trailers with grpc-status 0", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath);
  call(h2, 1, Version.path, Version.encodeRequest({ version: "v1" }));
  const response = await h2.response(1);
  assert.equal(field(response.headers, ":status"), "200");
  assert.equal(field(response.headers, "content-type"), "application/grpc");
  assert.deepEqual(response.trailers, [["grpc-status", "0"]]);
  assert.equal(response.frames.at(-1)!.flags & FLAG.END_STREAM, FLAG.END_STREAM);
  const reply = Version.decodeResponse(messages(response.body)[0]!);
  assert.equal(reply.runtime_version, "v1");
});

Deno.test("a request split into CONTINUATION frames and padded DATA frames, with the message across frames", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath);
  const long = "v".repeat(3000);
  const message = grpcMessage(Version.encodeRequest({ version: long }));
  h2.headers(1, grpcRequestHeaders(Version.path), { fragmentSize: 7 });
  h2.data(1, message.subarray(0, 3), { padding: 10 }); // not even the whole prefix
  h2.data(1, message.subarray(3, 1000), { padding: 0 });
  h2.data(1, new Uint8Array(0)); // empty DATA is allowed
  h2.data(1, message.subarray(1000), { padding: 255, endStream: true });
  const response = await h2.response(1);
  assert.equal(field(response.trailers, "grpc-status"), "0");
  assert.equal(Version.decodeResponse(messages(response.body)[0]!).runtime_version, long);
});

Deno.test("calls on many streams of one connection are answered independently", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath);
  const ids = Array.from({ length: 50 }, (_, i) => 1 + 2 * i);
  for (const id of ids) h2.headers(id, grpcRequestHeaders(Version.path));
  for (const id of ids.toReversed()) {
    h2.data(id, grpcMessage(Version.encodeRequest({ version: `s${id}` })), { endStream: true });
  }
  for (const id of ids) {
    const response = await h2.response(id);
    assert.equal(Version.decodeResponse(messages(response.body)[0]!).runtime_version, `s${id}`);
  }
});

Deno.test("flow control: a large response stops at the client's windows, resumes on WINDOW_UPDATE, and never exceeds the frame size", async () => {
  const list = containers(1000);
  await using h = await serve({
    runtime: { ListContainers: () => Promise.resolve({ containers: list }) },
  });
  const streamWindow = 1000;
  await using h2 = await H2Client.connect(h.socketPath, {
    settings: [[SETTING.INITIAL_WINDOW_SIZE, streamWindow]],
  });
  call(h2, 1, ListContainers.path, ListContainers.encodeRequest({}));

  let connectionGranted = 65_535;
  let streamGranted = streamWindow;
  let received = 0;
  const data: Uint8Array[] = [];
  let stalls = 0;
  for (;;) {
    let frame;
    try {
      frame = await h2.next(150);
    } catch {
      // Stalled: the server must have used up exactly one of the windows.
      stalls++;
      assert.ok(
        received === connectionGranted || received === streamGranted,
        `stalled at ${received} with windows ${connectionGranted}/${streamGranted}`,
      );
      const grant = 30_000 + stalls * 7;
      h2.windowUpdate(0, grant);
      h2.windowUpdate(1, grant);
      connectionGranted += grant;
      streamGranted += grant;
      continue;
    }
    assert.ok(frame, "connection open");
    if (frame.streamId !== 1) continue;
    if (frame.type === FRAME.DATA) {
      assert.ok(frame.payload.length <= 16_384, `DATA of ${frame.payload.length} bytes`);
      received += frame.payload.length;
      data.push(frame.payload);
      assert.ok(received <= Math.min(connectionGranted, streamGranted), "within the windows");
    }
    if (frame.type === FRAME.HEADERS && (frame.flags & FLAG.END_STREAM)) {
      assert.equal(field(frame.headers, "grpc-status"), "0");
      break;
    }
  }
  assert.ok(stalls > 5, `the response waited for updates ${stalls} times`);
  const body = concatBytes(data, received);
  const reply = ListContainers.decodeResponse(messages(body)[0]!);
  assert.equal(reply.containers.length, 1000);
  assert.equal(reply.containers[999].metadata.name, "container-999");
});

Deno.test("flow control: with a window of 0 only the headers go out; SETTINGS raising the window lets the DATA follow", async () => {
  await using h = await serve({
    runtime: { ListContainers: () => Promise.resolve({ containers: containers(100) }) },
  });
  await using h2 = await H2Client.connect(h.socketPath, {
    settings: [[SETTING.INITIAL_WINDOW_SIZE, 0], [SETTING.MAX_FRAME_SIZE, 20_000]],
  });
  call(h2, 1, ListContainers.path, ListContainers.encodeRequest({}));
  await h2.until((f) => f.type === FRAME.HEADERS && f.streamId === 1);
  await sleep(200);
  assert.deepEqual(h2.drain().filter((f) => f.type === FRAME.DATA), [], "no DATA in a 0 window");
  h2.settings([[SETTING.INITIAL_WINDOW_SIZE, 1_000_000]]);
  h2.windowUpdate(0, 1_000_000);
  const response = await h2.response(1);
  const sizes = response.frames.filter((f) => f.type === FRAME.DATA).map((f) => f.payload.length);
  assert.ok(sizes.every((size) => size <= 20_000) && sizes.includes(20_000), `${sizes}`);
  assert.equal(ListContainers.decodeResponse(messages(response.body)[0]!).containers.length, 100);
});

Deno.test("RST_STREAM from the client aborts the handler's signal; the connection keeps serving", async () => {
  let signal: AbortSignal | undefined;
  const stuck: UnaryHandler = (_request, ctx: RpcContext) => {
    signal = ctx.signal;
    return new Promise(() => {});
  };
  await using h = await serve({ runtime: { RunPodSandbox: stuck, Version: version } });
  await using h2 = await H2Client.connect(h.socketPath);
  call(h2, 1, codec("RunPodSandbox").path, new Uint8Array(0));
  while (signal === undefined) await sleep(5);
  h2.rstStream(1, ERROR.CANCEL);
  while (!signal.aborted) await sleep(5);
  assert.match((signal.reason as Error).message, /cancelled/);
  call(h2, 3, Version.path, Version.encodeRequest({}));
  const response = await h2.response(3);
  assert.equal(field(response.trailers, "grpc-status"), "0");
  const failed = h.logs.find((l) => l.method === "RunPodSandbox" && l.msg === "CRI call failed");
  assert.equal(failed?.code, "CANCELLED");
});

Deno.test("GOAWAY from the client: its open call still gets its answer, new streams are refused, then the server closes", async () => {
  let release: () => void = () => {};
  const slow: UnaryHandler = () =>
    new Promise((resolve) => release = () => resolve({ pod_sandbox_id: "done" }));
  await using h = await serve({ runtime: { RunPodSandbox: slow } });
  await using h2 = await H2Client.connect(h.socketPath);
  const RunPodSandbox = codec("RunPodSandbox");
  call(h2, 1, RunPodSandbox.path, new Uint8Array(0));
  await sleep(50);
  h2.goaway(0);
  call(h2, 3, RunPodSandbox.path, new Uint8Array(0));
  const refused = await h2.response(3);
  assert.equal(refused.rstCode, ERROR.REFUSED_STREAM);
  release();
  const response = await h2.response(1);
  assert.equal(RunPodSandbox.decodeResponse(messages(response.body)[0]!).pod_sandbox_id, "done");
  await h2.closedByServer();
});

Deno.test("garbage instead of the preface gets GOAWAY PROTOCOL_ERROR and a closed connection; the server keeps serving", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath, { preface: false });
  h2.send(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  assert.equal(await h2.goawayCode(), ERROR.PROTOCOL_ERROR);
  await stillServes(h.socketPath);
  assert.equal((await h.client.runtime.Version({})).runtime_name, "pve-cri");
});

Deno.test("a preface not followed by SETTINGS is a protocol error", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath, { preface: false });
  h2.send(new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  h2.ping(new Uint8Array(8));
  assert.equal(await h2.goawayCode(), ERROR.PROTOCOL_ERROR);
});

Deno.test("a header list over 64 KiB is refused with RESOURCE_EXHAUSTED; a block over 128 KiB ends the connection", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath);
  const big = "x".repeat(100_000);
  h2.headers(1, grpcRequestHeaders(Version.path, [["x-big", big]]), { fragmentSize: 16_000 });
  h2.data(1, grpcMessage(new Uint8Array(0)), { endStream: true });
  const refused = await h2.response(1);
  assert.equal(field(refused.headers, "grpc-status"), "8");
  call(h2, 3, Version.path, Version.encodeRequest({}));
  assert.equal(field((await h2.response(3)).trailers, "grpc-status"), "0");

  const huge = "y".repeat(200_000);
  h2.headers(5, grpcRequestHeaders(Version.path, [["x-huge", huge]]), { fragmentSize: 16_000 });
  assert.equal(await h2.goawayCode(), ERROR.ENHANCE_YOUR_CALM);
  await stillServes(h.socketPath);
});

Deno.test("an abrupt close with calls in flight aborts every handler's signal, and the server keeps serving", async () => {
  const signals: AbortSignal[] = [];
  const stuck: UnaryHandler = (_request, ctx) => {
    signals.push(ctx.signal);
    return new Promise(() => {});
  };
  await using h = await serve({ runtime: { RunPodSandbox: stuck, Version: version } });
  const h2 = await H2Client.connect(h.socketPath);
  for (let id = 1; id <= 9; id += 2) call(h2, id, codec("RunPodSandbox").path, new Uint8Array(0));
  while (signals.length < 5) await sleep(5);
  h2.close();
  await h2[Symbol.asyncDispose]();
  const until = Date.now() + 2_000;
  while (!signals.every((s) => s.aborted) && Date.now() < until) await sleep(5);
  assert.ok(signals.every((s) => s.aborted), "every handler told");
  await stillServes(h.socketPath);
});

Deno.test("close() does not hang on a client that never opens its window", async () => {
  await using h = await serve({
    runtime: { ListContainers: () => Promise.resolve({ containers: containers(100) }) },
  }, { graceMs: 200 });
  await using h2 = await H2Client.connect(h.socketPath, {
    settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]],
  });
  call(h2, 1, ListContainers.path, ListContainers.encodeRequest({}));
  await h2.until((f) => f.type === FRAME.HEADERS && f.streamId === 1);
  await h.server.close(); // returns: the blocked stream is given up after the grace period
  await h2.closedByServer();
});

Deno.test("a client that stops reading a server stream is cut off with ENHANCE_YOUR_CALM and its handler told", async () => {
  let signal: AbortSignal | undefined;
  const flood: StreamHandler = async (_request, ctx, send) => {
    signal = ctx.signal;
    const event = { container_id: "c".repeat(1024 * 1024) };
    while (!ctx.signal.aborted) {
      send(event);
      await sleep(0);
    }
  };
  await using h = await serve({ runtime: { GetContainerEvents: flood, Version: version } });
  await using h2 = await H2Client.connect(h.socketPath, {
    settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]],
  });
  call(h2, 1, codec("GetContainerEvents").path, new Uint8Array(0));
  const response = await h2.response(1, 20_000);
  assert.equal(response.rstCode, ERROR.ENHANCE_YOUR_CALM);
  assert.equal((signal?.reason as Error).message.includes("not reading"), true);
  await stillServes(h.socketPath);
});

Deno.test("more streams than MAX_CONCURRENT_STREAMS are refused with REFUSED_STREAM", async () => {
  const stuck: UnaryHandler = () => new Promise(() => {});
  await using h = await serve({ runtime: { RunPodSandbox: stuck } }, { graceMs: 100 });
  await using h2 = await H2Client.connect(h.socketPath);
  const path = codec("RunPodSandbox").path;
  for (let i = 0; i < 1001; i++) h2.headers(1 + 2 * i, grpcRequestHeaders(path));
  const refused = await h2.response(1 + 2 * 1000);
  assert.equal(refused.rstCode, ERROR.REFUSED_STREAM);
});

Deno.test("a connection without open streams is closed with GOAWAY after its idle timeout", async () => {
  using dir = tempDir();
  const path = `${dir.path}/idle.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const h2 = await H2Client.connect(path);
  const connection = new Http2Connection(await accepted, {
    log: silentLogger,
    idleTimeoutMs: 100,
    onStream: () => ({ onData() {}, onClose() {} }),
  });
  try {
    const started = performance.now();
    assert.equal(await h2.goawayCode(), ERROR.NO_ERROR);
    assert.ok(performance.now() - started >= 90, "not before the idle timeout");
    await connection.closed;
  } finally {
    await h2[Symbol.asyncDispose]();
    listener.close();
  }
});

Deno.test("a client that sends nothing after connecting is dropped after the preface timeout", async () => {
  using dir = tempDir();
  const path = `${dir.path}/silent.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const h2 = await H2Client.connect(path, { preface: false });
  const connection = new Http2Connection(await accepted, {
    log: silentLogger,
    prefaceTimeoutMs: 100,
    onStream: () => ({ onData() {}, onClose() {} }),
  });
  try {
    assert.equal(await h2.goawayCode(), ERROR.PROTOCOL_ERROR);
    await connection.closed;
  } finally {
    await h2[Symbol.asyncDispose]();
    listener.close();
  }
});

Deno.test("raw frame bytes: the frame header encodes length, type, flags and stream id", () => {
  const bytes = encodeFrame(FRAME.HEADERS, 5, 3, new Uint8Array(300));
  assert.deepEqual([...bytes.subarray(0, 9)], [0, 1, 44, 1, 5, 0, 0, 0, 3]);
});

Deno.test("random frames after a valid preface never take the server down (seeded)", async () => {
  const seed = Number(Deno.env.get("PVE_CRI_FUZZ_SEED") ?? 20_251_126);
  const random = new Random(seed);
  await using h = await serve({ runtime: { Version: version } });
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => random.int(256));
  // Plausible header blocks too, so HPACK and the gRPC checks get exercised past the first byte.
  const block = () =>
    random.chance(0.5) ? bytes(random.int(40)) : encodeLiteralBlock(
      grpcRequestHeaders(random.pick([Version.path, "/x", ""]), [[
        "grpc-timeout",
        bytes(3).join(""),
      ]]),
    );
  for (let connection = 0; connection < 60; connection++) {
    await using h2 = await H2Client.connect(h.socketPath);
    for (let i = 0; i < 30; i++) {
      const type = random.chance(0.8) ? random.int(10) : random.int(256);
      const streamId = random.pick([0, 1, 2, 3, 5, random.int(2 ** 31)]);
      const payload = type === FRAME.HEADERS || type === FRAME.CONTINUATION
        ? block()
        : bytes(random.pick([0, 4, 5, 6, 8, random.int(100)]));
      h2.frame(type, random.int(256), streamId, payload);
    }
    await h2.flushed();
    await sleep(1);
  }
  await stillServes(h.socketPath);
  assert.equal((await h.client.runtime.Version({})).runtime_name, "pve-cri", `seed ${seed}`);
  // Peers' mistakes are warnings; an error line would be a bug of ours.
  const bugs = h.logs.filter((line) => line.level === "error");
  assert.deepEqual(bugs, [], `seed ${seed}`);
});

Deno.test("a client that half-closes its socket is gone: its calls are cancelled and the server closes too", async () => {
  let signal: AbortSignal | undefined;
  const stuck: UnaryHandler = (_request, ctx) => {
    signal = ctx.signal;
    return new Promise(() => {});
  };
  await using h = await serve({ runtime: { RunPodSandbox: stuck } });
  const conn = await Deno.connect({ transport: "unix", path: h.socketPath });
  const request = Uint8Array.from([
    ...PREFACE,
    ...encodeFrame(FRAME.SETTINGS, 0, 0, new Uint8Array(0)),
    ...encodeFrame(
      FRAME.HEADERS,
      FLAG.END_HEADERS,
      1,
      encodeLiteralBlock(grpcRequestHeaders(codec("RunPodSandbox").path)),
    ),
    ...encodeFrame(FRAME.DATA, FLAG.END_STREAM, 1, grpcMessage(new Uint8Array(0))),
  ]);
  try {
    for (let written = 0; written < request.length;) {
      written += await conn.write(request.subarray(written));
    }
    while (signal === undefined) await sleep(5);
    await conn.closeWrite();
    const buffer = new Uint8Array(64 * 1024);
    const until = Date.now() + 5_000;
    while (await conn.read(buffer) !== null) {
      assert.ok(Date.now() < until, "the server closed its side");
    }
    assert.ok(signal.aborted);
  } finally {
    conn.close();
  }
});
