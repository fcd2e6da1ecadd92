/**
 * Each limit a client can run into, attacked from the byte-level client: past it the
 * connection ends with ENHANCE_YOUR_CALM (or the call with RESOURCE_EXHAUSTED), and the
 * server goes on serving everyone else.
 */
import assert from "node:assert/strict";
import type { UnaryHandler } from "../../../../adapters/cri/rpc.ts";
import {
  FLAG,
  FRAME,
  grpcMessage,
  grpcRequestHeaders,
  grpcStatus,
  H2Client,
} from "../../../_support/h2_client.ts";
import { codec, serve } from "../_harness.ts";
import { stillServes, Version, version } from "./_version.ts";

const ENHANCE_YOUR_CALM = 11;
const REFUSED_STREAM = 7;

Deno.test("rapid reset: HEADERS then RST_STREAM in a loop past maxResetsPerSecond ends the connection with ENHANCE_YOUR_CALM", async () => {
  let calls = 0;
  const counted: UnaryHandler = () => {
    calls++;
    return new Promise(() => {});
  };
  await using h = await serve(
    { runtime: { Version: version, RunPodSandbox: counted } },
    { limits: { maxResetsPerSecond: 50 }, graceMs: 100 },
  );
  await using h2 = await H2Client.connect(h.socketPath);
  const path = codec("RunPodSandbox").path;
  // As an attacker would, in bursts, until the server hangs up (10,000 pairs at most).
  for (let i = 0; i < 10_000 && !h2.ended; i++) {
    h2.headers(1 + 2 * i, grpcRequestHeaders(path));
    h2.data(1 + 2 * i, grpcMessage(new Uint8Array(0)), { endStream: true });
    h2.rstStream(1 + 2 * i, 8);
    if (i % 100 === 99) await h2.flushed();
  }
  assert.equal(await h2.goawayCode(10_000), ENHANCE_YOUR_CALM);
  assert.ok(calls <= 51, `${calls} calls reached a handler before the cut, not 10,000`);
  await stillServes(h.socketPath);
});

Deno.test("PING and SETTINGS floods past maxControlFramesPerSecond end the connection with ENHANCE_YOUR_CALM", async () => {
  await using h = await serve({ runtime: { Version: version } }, {
    limits: { maxControlFramesPerSecond: 100 },
  });
  for (const flood of ["ping", "settings", "empty DATA"] as const) {
    await using h2 = await H2Client.connect(h.socketPath);
    if (flood === "empty DATA") h2.headers(1, grpcRequestHeaders(Version.path));
    for (let i = 0; i < 5_000 && !h2.ended; i++) {
      if (flood === "ping") h2.ping(new Uint8Array(8));
      else if (flood === "settings") h2.settings([]);
      else h2.data(1, new Uint8Array(0));
      if (i % 100 === 99) await h2.flushed();
    }
    assert.equal(await h2.goawayCode(10_000), ENHANCE_YOUR_CALM, flood);
  }
  await stillServes(h.socketPath);
});

Deno.test("a CONTINUATION flood: more than maxContinuationFrames in one header block ends the connection", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath);
  h2.frame(FRAME.HEADERS, 0, 1, new Uint8Array(0));
  for (let i = 0; i < 1_000; i++) h2.frame(FRAME.CONTINUATION, 0, 1, new Uint8Array(0));
  assert.equal(await h2.goawayCode(10_000), ENHANCE_YOUR_CALM);
  await stillServes(h.socketPath);
});

Deno.test("maxConcurrentStreams is advertised and enforced with REFUSED_STREAM", async () => {
  const stuck: UnaryHandler = () => new Promise(() => {});
  await using h = await serve(
    { runtime: { RunPodSandbox: stuck } },
    { limits: { maxConcurrentStreams: 5 }, graceMs: 100 },
  );
  await using h2 = await H2Client.connect(h.socketPath);
  await h2.until((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
  assert.deepEqual(h2.serverSettings.filter(([id]) => id === 3), [[3, 5]]);
  const path = codec("RunPodSandbox").path;
  for (let i = 0; i < 6; i++) h2.headers(1 + 2 * i, grpcRequestHeaders(path));
  assert.equal((await h2.response(11)).rstCode, REFUSED_STREAM);
});

Deno.test("connections past maxConnections are closed as they are accepted; the others keep serving", async () => {
  await using h = await serve({ runtime: { Version: version } }, { limits: { maxConnections: 2 } });
  // The harness's own client holds one connection.
  await using second = await H2Client.connect(h.socketPath);
  await second.until((f) => f.type === FRAME.SETTINGS);
  await using third = await H2Client.connect(h.socketPath);
  await third.closedByServer();
  assert.equal((await h.client.runtime.Version({})).version, "0.1.0");
  second.headers(1, grpcRequestHeaders(Version.path));
  second.data(1, grpcMessage(Version.encodeRequest({})), { endStream: true });
  assert.equal((await second.response(1)).rstCode, undefined);
});

Deno.test("a request message past 16 MiB is RESOURCE_EXHAUSTED from its length prefix, before the rest is sent", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(Version.path));
  const prefix = new Uint8Array(5);
  new DataView(prefix.buffer).setUint32(1, 16 * 1024 * 1024 + 1);
  h2.data(1, prefix); // the 16 MiB never follow
  const response = await h2.response(1);
  assert.equal(grpcStatus(response), "8");
});

Deno.test("a request left half-sent past requestTimeoutMs is reset with CANCEL, and its handler told", async () => {
  let signal: AbortSignal | undefined;
  const stuck: UnaryHandler = (_request, ctx) => {
    signal = ctx.signal;
    return new Promise(() => {});
  };
  await using h = await serve({ runtime: { Version: version, RunPodSandbox: stuck } }, {
    limits: { requestTimeoutMs: 200 },
    graceMs: 100,
  });
  await using h2 = await H2Client.connect(h.socketPath);
  h2.headers(1, grpcRequestHeaders(codec("RunPodSandbox").path)); // and never the message
  const started = performance.now();
  assert.equal((await h2.response(1)).rstCode, 8 /* CANCEL */);
  assert.ok(performance.now() - started >= 190, "not before the timeout");
  // A whole request on the same connection is unaffected.
  h2.headers(3, grpcRequestHeaders(Version.path));
  h2.data(3, grpcMessage(Version.encodeRequest({})), { endStream: true });
  assert.equal((await h2.response(3)).rstCode, undefined);
  assert.equal(signal, undefined, "the handler never ran: its request never came");
});
