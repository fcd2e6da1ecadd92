/**
 * gRPC over HTTP/2 as the server speaks it (grpc/doc/PROTOCOL-HTTP2.md), checked frame by frame
 * with a byte-level client: request headers, timeouts, message framing, Trailers-Only answers.
 */
import assert from "node:assert/strict";
import { RuntimeError } from "../../../lib/errors.ts";
import type { RpcContext, UnaryHandler } from "../../../adapters/cri/rpc.ts";
import {
  MessageReader,
  parseGrpcTimeout,
  percentDecode,
  percentEncode,
} from "../../../adapters/cri/grpc_wire.ts";
import {
  field,
  FLAG,
  FRAME,
  grpcMessage,
  grpcRequestHeaders,
  H2Client,
  type Response,
} from "../../_support/h2_client.ts";
import { codec, serve, sleep } from "./_harness.ts";

const version: UnaryHandler = (request) =>
  Promise.resolve({ version: "0.1.0", runtime_name: "pve-cri", runtime_version: request.version });
const Version = codec("Version");
const PROTOCOL_ERROR = 1;

/** Asserts a Trailers-Only response: one HEADERS frame with END_STREAM, and returns its fields. */
function trailersOnly(response: Response, httpStatus = "200") {
  const headers = response.frames.filter((f) => f.type === FRAME.HEADERS);
  assert.equal(headers.length, 1, "one HEADERS frame");
  assert.equal(response.frames.filter((f) => f.type === FRAME.DATA).length, 0, "no DATA");
  assert.equal(headers[0]!.flags & FLAG.END_STREAM, FLAG.END_STREAM);
  assert.equal(field(response.headers, ":status"), httpStatus);
  assert.equal(field(response.headers, "content-type"), "application/grpc");
  return {
    code: Number(field(response.headers, "grpc-status")),
    message: percentDecode(field(response.headers, "grpc-message") ?? ""),
  };
}

/** Sends one request on a fresh stream with these headers and DATA (none: END_STREAM on HEADERS). */
async function request(
  socketPath: string,
  headers: [string, string][],
  message: Uint8Array | "none" = grpcMessage(Version.encodeRequest({})),
): Promise<Response> {
  await using h2 = await H2Client.connect(socketPath);
  h2.headers(1, headers, { endStream: message === "none" });
  if (message !== "none") h2.data(1, message, { endStream: true });
  return await h2.response(1);
}

Deno.test("grpc-timeout takes 1 to 8 digits and a unit: H M S m u n", () => {
  assert.equal(parseGrpcTimeout("1H"), 3_600_000);
  assert.equal(parseGrpcTimeout("2M"), 120_000);
  assert.equal(parseGrpcTimeout("3S"), 3_000);
  assert.equal(parseGrpcTimeout("4m"), 4);
  assert.equal(parseGrpcTimeout("5000u"), 5);
  assert.equal(parseGrpcTimeout("7000000n"), 7);
  assert.equal(parseGrpcTimeout("99999999H"), 99_999_999 * 3_600_000);
  assert.equal(parseGrpcTimeout("0m"), 0);
  for (const bad of ["", "1", "S", "123456789S", "1s", "-1S", "1.5S", " 1S", "1S ", "1h"]) {
    assert.equal(parseGrpcTimeout(bad), undefined, JSON.stringify(bad));
  }
});

Deno.test("grpc-message is percent-encoded UTF-8, and decodes back", () => {
  assert.equal(percentEncode('Container "abc" not found'), 'Container "abc" not found');
  assert.equal(percentEncode("100% done"), "100%25 done");
  assert.equal(percentEncode("line\nbreak"), "line%0Abreak");
  assert.equal(percentEncode("caf\u00e9 \u2603"), "caf%C3%A9 %E2%98%83");
  assert.equal(percentDecode("caf%C3%A9 %E2%98%83 100%25 %zz"), "caf\u00e9 \u2603 100% %zz");
});

Deno.test("messages are cut out of DATA however the frames split them", () => {
  const reader = new MessageReader(1024);
  const one = grpcMessage(Uint8Array.of(1, 2, 3));
  const two = grpcMessage(Uint8Array.of(4));
  const empty = grpcMessage(new Uint8Array(0));
  const all = Uint8Array.from([...one, ...two, ...empty]);
  for (const byte of all.subarray(0, 4)) reader.push(Uint8Array.of(byte));
  assert.equal(reader.next(), undefined, "prefix incomplete");
  reader.push(all.subarray(4, 9));
  assert.deepEqual(reader.next(), Uint8Array.of(1, 2, 3));
  assert.equal(reader.next(), undefined);
  reader.push(all.subarray(9));
  assert.deepEqual(reader.next(), Uint8Array.of(4));
  assert.deepEqual(reader.next(), new Uint8Array(0));
  assert.equal(reader.next(), undefined);
  assert.equal(reader.buffered, 0);

  reader.push(grpcMessage(new Uint8Array(2000)));
  assert.throws(() => reader.next(), (e: RuntimeError) => e.code === "ResourceExhausted");
  const compressed = new MessageReader(1024);
  compressed.push(grpcMessage(Uint8Array.of(1), true));
  assert.throws(() => compressed.next(), (e: RuntimeError) => e.code === "Unimplemented");
});

Deno.test("a call past its grpc-timeout: DEADLINE_EXCEEDED Trailers-Only and the handler's signal aborts", async () => {
  let signal: AbortSignal | undefined;
  const stuck: UnaryHandler = (_request, ctx: RpcContext) => {
    signal = ctx.signal;
    return new Promise(() => {});
  };
  await using h = await serve({ runtime: { RunPodSandbox: stuck } });
  const path = codec("RunPodSandbox").path;
  const started = performance.now();
  const response = await request(
    h.socketPath,
    grpcRequestHeaders(path, [["grpc-timeout", "150m"]]),
  );
  const elapsed = performance.now() - started;
  assert.deepEqual(trailersOnly(response), { code: 4, message: "Deadline exceeded" });
  assert.ok(elapsed >= 140, `answered after ${elapsed} ms: not before the deadline`);
  assert.ok(signal?.aborted);
  assert.equal((signal.reason as RuntimeError).code, "DeadlineExceeded");
});

Deno.test("every grpc-timeout unit sets the deadline the handler runs under", async () => {
  const calls: { deadline: number; abortedAt?: number }[] = [];
  const timed: UnaryHandler = (_request, ctx) =>
    new Promise((resolve) => {
      const call: { deadline: number; abortedAt?: number } = { deadline: ctx.deadline };
      calls.push(call);
      ctx.signal.addEventListener("abort", () => {
        call.abortedAt = Date.now();
        resolve({});
      });
    });
  await using h = await serve({ runtime: { RunPodSandbox: timed } });
  const path = codec("RunPodSandbox").path;
  // The deadline is taken when the headers arrive: between sending them and the answer.
  for (const [timeout, ms] of [["200000u", 200], ["99000000n", 99], ["200m", 200]] as const) {
    const sent = Date.now();
    const response = await request(
      h.socketPath,
      grpcRequestHeaders(path, [["grpc-timeout", timeout]]),
    );
    const answered = Date.now();
    assert.equal(trailersOnly(response).code, 4, timeout);
    const call = calls.at(-1)!;
    assert.ok(call.deadline >= sent + ms && call.deadline <= answered + ms, timeout);
    assert.ok(call.abortedAt! >= call.deadline, `${timeout}: aborted at the deadline, not before`);
  }
  for (const [timeout, ms] of [["1S", 1_000], ["1M", 60_000], ["1H", 3_600_000]] as const) {
    await using h2 = await H2Client.connect(h.socketPath);
    const before = calls.length;
    const sent = Date.now();
    h2.headers(1, grpcRequestHeaders(path, [["grpc-timeout", timeout]]));
    h2.data(1, grpcMessage(new Uint8Array(0)), { endStream: true });
    while (calls.length === before) await sleep(5);
    assert.ok(calls.at(-1)!.deadline >= sent + ms, `${timeout}: the handler runs until then`);
    h2.rstStream(1, 8);
  }
  // Past what a timer can hold: no deadline the handler could meet is invented.
  await using h2 = await H2Client.connect(h.socketPath);
  const before = calls.length;
  h2.headers(1, grpcRequestHeaders(path, [["grpc-timeout", "99999999H"]]));
  h2.data(1, grpcMessage(new Uint8Array(0)), { endStream: true });
  while (calls.length === before) await sleep(5);
  assert.ok(calls.at(-1)!.deadline >= Date.now() + 99_999_998 * 3_600_000);
  h2.rstStream(1, 8);
});

Deno.test("a deadline that passes before the request is complete is answered DEADLINE_EXCEEDED", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(Version.path, [["grpc-timeout", "100m"]]));
  const response = await h2.response(1);
  assert.equal(trailersOnly(response).code, 4);
});

Deno.test("a malformed grpc-timeout is answered INTERNAL naming it", async () => {
  await using h = await serve({ runtime: { Version: version } });
  const response = await request(
    h.socketPath,
    grpcRequestHeaders(Version.path, [["grpc-timeout", "soon"]]),
  );
  assert.deepEqual(trailersOnly(response), { code: 13, message: 'Malformed grpc-timeout "soon"' });
});

Deno.test("errors before any message are Trailers-Only, with the status and a percent-encoded message", async () => {
  const missing: UnaryHandler = () =>
    Promise.reject(new RuntimeError("NotFound", 'Container "caf\u00e9": 100% gone'));
  await using h = await serve({ runtime: { ContainerStatus: missing } });
  const response = await request(h.socketPath, grpcRequestHeaders(codec("ContainerStatus").path));
  assert.equal(field(response.headers, "grpc-message"), 'Container "caf%C3%A9": 100%25 gone');
  assert.deepEqual(trailersOnly(response), {
    code: 5,
    message: 'Container "caf\u00e9": 100% gone',
  });
});

Deno.test("an unknown method is UNIMPLEMENTED, Trailers-Only", async () => {
  await using h = await serve({ runtime: { Version: version } });
  const response = await request(
    h.socketPath,
    grpcRequestHeaders("/runtime.v1.RuntimeService/Nope"),
  );
  assert.deepEqual(trailersOnly(response), {
    code: 12,
    message: 'Method "/runtime.v1.RuntimeService/Nope" is not served by pve-cri',
  });
});

Deno.test("a content type other than application/grpc is answered HTTP 415; +proto and parameters are fine", async () => {
  await using h = await serve({ runtime: { Version: version } });
  const headers = (type: string) =>
    grpcRequestHeaders(Version.path).map(([n, v]): [string, string] =>
      n === "content-type" ? [n, type] : [n, v]
    );
  const json = await request(h.socketPath, headers("application/json"));
  assert.equal(trailersOnly(json, "415").code, 13);
  const grpcWeb = await request(h.socketPath, headers("application/grpc-web"));
  assert.equal(trailersOnly(grpcWeb, "415").code, 13);
  for (const ok of ["application/grpc+proto", "application/grpc;charset=utf-8"]) {
    const response = await request(h.socketPath, headers(ok));
    assert.equal(field(response.trailers, "grpc-status"), "0", ok);
  }
});

Deno.test("a method other than POST is answered HTTP 405", async () => {
  await using h = await serve({ runtime: { Version: version } });
  const get = grpcRequestHeaders(Version.path).map(([n, v]): [string, string] =>
    n === ":method" ? [n, "GET"] : [n, v]
  );
  const response = await request(h.socketPath, get, "none");
  assert.equal(trailersOnly(response, "405").code, 13);
});

Deno.test("compressed messages and grpc-encoding other than identity are UNIMPLEMENTED", async () => {
  await using h = await serve({ runtime: { Version: version } });
  const compressed = await request(
    h.socketPath,
    grpcRequestHeaders(Version.path),
    grpcMessage(Uint8Array.of(1, 2), true),
  );
  assert.equal(trailersOnly(compressed).code, 12);
  assert.equal(field(compressed.headers, "grpc-accept-encoding"), "identity");
  const gzip = await request(
    h.socketPath,
    grpcRequestHeaders(Version.path, [["grpc-encoding", "gzip"]]),
  );
  const refused = trailersOnly(gzip);
  assert.equal(refused.code, 12);
  assert.match(refused.message, /"gzip" is not supported/);
  assert.equal(field(gzip.headers, "grpc-accept-encoding"), "identity");
  const identity = await request(
    h.socketPath,
    grpcRequestHeaders(Version.path, [["grpc-encoding", "identity"]]),
  );
  assert.equal(field(identity.trailers, "grpc-status"), "0");
});

Deno.test("a unary request must carry exactly one whole message", async () => {
  await using h = await serve({ runtime: { Version: version } });
  const headers = grpcRequestHeaders(Version.path);
  const none = await request(h.socketPath, headers, "none");
  assert.deepEqual(trailersOnly(none), { code: 13, message: "Request has no message" });
  const empty = await request(h.socketPath, headers, new Uint8Array(0));
  assert.deepEqual(trailersOnly(empty), { code: 13, message: "Request has no message" });
  const cut = await request(h.socketPath, headers, grpcMessage(new Uint8Array(10)).subarray(0, 8));
  assert.deepEqual(trailersOnly(cut), { code: 13, message: "Request ends inside a message" });
  const one = grpcMessage(Version.encodeRequest({}));
  const two = await request(h.socketPath, headers, Uint8Array.from([...one, ...one]));
  assert.deepEqual(trailersOnly(two), { code: 13, message: "Request has more than one message" });
  const garbage = await request(h.socketPath, headers, grpcMessage(Uint8Array.of(0xff, 0xff)));
  const undecodable = trailersOnly(garbage);
  assert.equal(undecodable.code, 13);
  assert.match(undecodable.message, /^Request cannot be decoded: /);
});

Deno.test("malformed request headers reset the stream with PROTOCOL_ERROR", async () => {
  await using h = await serve({ runtime: { Version: version } });
  const base = grpcRequestHeaders(Version.path);
  const cases: [string, [string, string][]][] = [
    ["no :path", base.filter(([n]) => n !== ":path")],
    ["no :method", base.filter(([n]) => n !== ":method")],
    ["no :scheme", base.filter(([n]) => n !== ":scheme")],
    ["an uppercase name", [...base, ["X-Upper", "1"]]],
    ["a pseudo-header after a field", [...base, [":authority", "late"]]],
    ["an unknown pseudo-header", [[":protocol", "x"], ...base]],
    ["a repeated pseudo-header", [[":path", "/x"], ...base]],
    ["a connection header", [...base, ["connection", "keep-alive"]]],
    ["te other than trailers", [...base.filter(([n]) => n !== "te"), ["te", "gzip"]]],
  ];
  for (const [what, headers] of cases) {
    const response = await request(h.socketPath, headers);
    assert.equal(response.rstCode, PROTOCOL_ERROR, what);
  }
});

Deno.test("a request without te: trailers is still served", async () => {
  await using h = await serve({ runtime: { Version: version } });
  const headers = grpcRequestHeaders(Version.path).filter(([n]) => n !== "te");
  const response = await request(h.socketPath, headers);
  assert.equal(field(response.trailers, "grpc-status"), "0");
});

Deno.test("a server stream sends many messages in DATA, then trailers", async () => {
  await using h = await serve({
    runtime: {
      GetContainerEvents: (_request, _ctx, send) => {
        for (let i = 0; i < 500; i++) send({ container_id: `c${i}` });
        return Promise.resolve();
      },
    },
  });
  const events = codec("GetContainerEvents");
  const response = await request(h.socketPath, grpcRequestHeaders(events.path));
  assert.equal(field(response.headers, ":status"), "200");
  assert.deepEqual(response.trailers, [["grpc-status", "0"]]);
  const ids: string[] = [];
  for (let offset = 0; offset < response.body.length;) {
    const length = new DataView(response.body.buffer, offset).getUint32(1);
    ids.push(
      events.decodeResponse(response.body.subarray(offset + 5, offset + 5 + length)).container_id,
    );
    offset += 5 + length;
  }
  assert.deepEqual(ids, Array.from({ length: 500 }, (_, i) => `c${i}`));
});

Deno.test("a stream that fails after its first message ends with the status in trailers", async () => {
  await using h = await serve({
    runtime: {
      StreamContainers: (_request, _ctx, send) => {
        send({ containers: [{ id: "x" }] });
        return Promise.reject(new RuntimeError("NotFound", "gone"));
      },
    },
  });
  const response = await request(h.socketPath, grpcRequestHeaders(codec("StreamContainers").path));
  assert.equal(field(response.headers, "grpc-status"), undefined);
  assert.equal(field(response.trailers, "grpc-status"), "5");
  assert.equal(field(response.trailers, "grpc-message"), "gone");
});
