import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../lib/errors.ts";
import { silentLogger } from "../../../lib/log.ts";
import {
  SocketInUseError,
  SocketPathTakenError,
  startCriServer,
} from "../../../adapters/cri/grpc_server.ts";
import type { RpcContext, StreamHandler, UnaryHandler } from "../../../adapters/cri/rpc.ts";
import { connect } from "../../_support/cri_client.ts";
import { FRAME, H2Client } from "../../_support/h2_client.ts";
import { grpcStatus, messages, startCall, UNAVAILABLE } from "../../_support/raw_calls.ts";
import { tempDir } from "../../_support/temp_dir.ts";
import { serve, sleep } from "./_harness.ts";

const version: UnaryHandler = () => Promise.resolve({ version: "0.1.0", runtime_name: "pve-cri" });
const noHandlers = { runtime: {}, image: {} };
const mode = (path: string) => Deno.lstatSync(path).mode! & 0o777;
const exists = (path: string) => {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
};

/** Resolves when the handler's signal aborts, then rejects with its reason. */
const untilAborted = (ctx: RpcContext) =>
  new Promise<never>((_, reject) => {
    ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
  });

/** A socket file nothing listens on, as a killed server leaves it. */
async function staleSocket(path: string): Promise<void> {
  const listen = `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", `${listen} setInterval(() => {}, 1000);`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const until = Date.now() + 10_000;
  while (!exists(path) && Date.now() < until) await sleep(10);
  child.kill("SIGKILL");
  await child.status;
}

Deno.test("the socket is 0660 and its missing parent directory is created 0750", async () => {
  await using h = await serve({}, {});
  assert.equal(h.server.address, `unix://${h.socketPath}`);
  assert.ok(Deno.lstatSync(h.socketPath).isSocket);
  assert.equal(mode(h.socketPath).toString(8), "660");
  assert.equal(mode(`${h.dir}/run`).toString(8), "750");
});

Deno.test("close() removes the directories it made for the socket, and leaves one that existed", async () => {
  using dir = tempDir();
  const start = (socketPath: string) =>
    startCriServer({ socketPath, handlers: noHandlers, isReady: () => true, log: silentLogger });
  const made = await start(`${dir.path}/run/pve-cri/cri.sock`);
  assert.ok(exists(`${dir.path}/run/pve-cri`));
  await made.close();
  assert.ok(!exists(`${dir.path}/run`), "run/ and run/pve-cri/ were made for it: both gone");
  Deno.mkdirSync(`${dir.path}/kept`);
  const existing = await start(`${dir.path}/kept/cri.sock`);
  await existing.close();
  assert.deepEqual([...Deno.readDirSync(`${dir.path}/kept`)], [], "the socket is gone");
  assert.ok(exists(`${dir.path}/kept`), "the directory was there before: it stays");
});

Deno.test("an existing parent directory keeps its mode", async () => {
  using dir = tempDir();
  Deno.chmodSync(dir.path, 0o711);
  const server = await startCriServer({
    socketPath: `${dir.path}/cri.sock`,
    handlers: noHandlers,
    isReady: () => true,
    log: silentLogger,
  });
  await server.close();
  assert.equal(mode(dir.path).toString(8), "711");
});

Deno.test("a stale socket file (nothing answers) is replaced", async () => {
  using dir = tempDir();
  const socketPath = `${dir.path}/cri.sock`;
  await staleSocket(socketPath);
  assert.ok(Deno.lstatSync(socketPath).isSocket);
  await using h = await serve({ runtime: { Version: version } }, { socketPath });
  assert.equal((await h.client.runtime.Version({})).runtime_name, "pve-cri");
});

Deno.test("a live socket (another server answers) is refused with an error naming the path", async () => {
  using dir = tempDir();
  const socketPath = `${dir.path}/cri.sock`;
  const other = Deno.listen({ transport: "unix", path: socketPath });
  try {
    await assert.rejects(
      startCriServer({ socketPath, handlers: noHandlers, isReady: () => true, log: silentLogger }),
      (error: Error) =>
        error instanceof SocketInUseError && error.socketPath === socketPath &&
        error.message.includes(`"${socketPath}"`) && /in use/.test(error.message),
    );
    assert.ok(exists(socketPath), "the other server's socket is left alone");
  } finally {
    other.close();
  }
});

Deno.test("a second CRI server on the same path is refused and the first keeps serving", async () => {
  await using h = await serve({ runtime: { Version: version } });
  await assert.rejects(
    startCriServer({
      socketPath: h.socketPath,
      handlers: noHandlers,
      isReady: () => true,
      log: silentLogger,
    }),
    SocketInUseError,
  );
  assert.equal((await h.client.runtime.Version({})).runtime_name, "pve-cri");
});

Deno.test("a socket path holding a regular file is refused and the file kept", async () => {
  using dir = tempDir();
  const socketPath = `${dir.path}/cri.sock`;
  Deno.writeTextFileSync(socketPath, "not a socket");
  await assert.rejects(
    startCriServer({ socketPath, handlers: noHandlers, isReady: () => true, log: silentLogger }),
    SocketPathTakenError,
  );
  assert.equal(Deno.readTextFileSync(socketPath), "not a socket");
});

Deno.test("a socket path longer than a unix socket allows is refused as InvalidArgument", async () => {
  using dir = tempDir();
  const socketPath = `${dir.path}/${"s".repeat(120)}.sock`;
  await assert.rejects(
    startCriServer({ socketPath, handlers: noHandlers, isReady: () => true, log: silentLogger }),
    (error: Error) => error instanceof InvalidArgumentError && /too long/.test(error.message),
  );
});

// The server goes away under an open connection in these tests: the client is the byte-level
// one, not grpc-js, which can abort the whole Deno process on the server's GOAWAY
// (denoland/deno#36788).

Deno.test("close() with an open GetContainerEvents stream ends it without waiting out the grace period, and removes the socket", async () => {
  const GRACE_MS = 30_000;
  let signal: AbortSignal | undefined;
  const events: StreamHandler = async (_request, ctx, send) => {
    signal = ctx.signal;
    send({ container_id: "c1", container_event_type: "CONTAINER_CREATED_EVENT" });
    await untilAborted(ctx).catch(() => {});
  };
  await using h = await serve({ runtime: { GetContainerEvents: events } }, { graceMs: GRACE_MS });
  await using h2 = await H2Client.connect(h.socketPath);
  startCall(h2, 1, "GetContainerEvents");
  await h2.until((f) => f.type === FRAME.DATA && f.streamId === 1);

  // Streams are ended at once: close() does not sit out the grace period for them.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const graceOver = new Promise<"grace period over">((resolve) =>
    timer = setTimeout(() => resolve("grace period over"), GRACE_MS)
  );
  const first = await Promise.race([h.server.close().then(() => "closed" as const), graceOver]);
  clearTimeout(timer);
  assert.equal(first, "closed");
  const ended = grpcStatus(await h2.response(1));
  assert.deepEqual(ended, { code: UNAVAILABLE, message: "pve-cri is shutting down" });
  assert.ok(signal?.aborted);
  assert.ok(!exists(h.socketPath), "socket removed");
  await h.server.close(); // idempotent
});

Deno.test("close() lets an in-flight unary call finish", async () => {
  let release: (() => void) | undefined;
  const slow: UnaryHandler = () =>
    new Promise((resolve) => release = () => resolve({ pod_sandbox_id: "done" }));
  await using h = await serve({ runtime: { RunPodSandbox: slow } });
  await using h2 = await H2Client.connect(h.socketPath);
  startCall(h2, 1, "RunPodSandbox");
  while (release === undefined) await sleep(5);
  let closed = false;
  const closing = h.server.close().then(() => closed = true);
  await sleep(100);
  assert.equal(closed, false, "close() waits for the call");
  release();
  const response = await h2.response(1);
  assert.equal(grpcStatus(response).code, 0);
  assert.equal(messages("RunPodSandbox", response)[0].pod_sandbox_id, "done");
  await closing;
  assert.ok(!exists(h.socketPath));
});

Deno.test("close() cancels unary calls still running after the grace period", async () => {
  let signal: AbortSignal | undefined;
  const stuck: UnaryHandler = (_request, ctx) => {
    signal = ctx.signal;
    return untilAborted(ctx);
  };
  await using h = await serve({ runtime: { RunPodSandbox: stuck } }, { graceMs: 200 });
  await using h2 = await H2Client.connect(h.socketPath);
  startCall(h2, 1, "RunPodSandbox");
  while (signal === undefined) await sleep(5);
  const started = performance.now();
  await h.server.close();
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 190, `close() took ${elapsed} ms: the grace period first`);
  assert.notEqual(grpcStatus(await h2.response(1)).code, 0);
  assert.ok(signal?.aborted);
});

Deno.test("after close() the socket refuses connections", async () => {
  using dir = tempDir();
  const socketPath = `${dir.path}/cri.sock`;
  const server = await startCriServer({
    socketPath,
    handlers: { runtime: { Version: version }, image: {} },
    isReady: () => true,
    log: silentLogger,
  });
  const client = await connect(socketPath);
  await client.runtime.Version({});
  client.close();
  await server.close();
  await assert.rejects(connect(socketPath, { timeoutMs: 300 }), /No CRI server answers/);
});

Deno.test("unary calls cut off after the grace period are answered UNAVAILABLE", async () => {
  let running = 0;
  const stuck: UnaryHandler = () => {
    running++;
    return new Promise(() => {});
  };
  await using h = await serve({ runtime: { RunPodSandbox: stuck } }, { graceMs: 100 });
  await using h2 = await H2Client.connect(h.socketPath);
  startCall(h2, 1, "RunPodSandbox");
  startCall(h2, 3, "RunPodSandbox");
  while (running < 2) await sleep(5);
  await h.server.close();
  for (const stream of [1, 3]) {
    assert.deepEqual(grpcStatus(await h2.response(stream)), {
      code: UNAVAILABLE,
      message: "pve-cri is shutting down",
    });
  }
});
