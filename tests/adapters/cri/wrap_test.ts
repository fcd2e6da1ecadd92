import assert from "node:assert/strict";
import { RuntimeError, type StatusCode } from "../../../lib/errors.ts";
import type { RpcContext, StreamHandler, UnaryHandler } from "../../../adapters/cri/rpc.ts";
import { logLevelOf } from "../../../adapters/cri/wrap.ts";
import { type ServiceError, status } from "../../_support/cri_client.ts";
import { serve, sleep } from "./_harness.ts";

const version: UnaryHandler = () => Promise.resolve({ version: "0.1.0", runtime_name: "pve-cri" });

/** Asserts a call fails with this gRPC code, and returns the error for more checks. */
async function failure(call: Promise<unknown>, code: status): Promise<ServiceError> {
  let caught: ServiceError | undefined;
  await assert.rejects(call, (error: ServiceError) => {
    caught = error;
    return true;
  });
  assert.equal(status[caught!.code], status[code], caught!.details);
  return caught!;
}

/** Resolves once `signal` aborts; fails the test if it does not within `ms`. */
async function aborted(signal: AbortSignal | undefined, ms = 2_000): Promise<unknown> {
  const until = Date.now() + ms;
  while (!signal?.aborted) {
    if (Date.now() > until) assert.fail(`signal not aborted within ${ms} ms`);
    await sleep(5);
  }
  return signal.reason;
}

/** A handler that waits for its signal, as well-behaved slow handlers do. */
const waitForAbort = (ctx: RpcContext) =>
  new Promise<never>((_, reject) => {
    ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
  });

Deno.test("a method without a handler answers UNIMPLEMENTED naming the method", async () => {
  await using h = await serve({ runtime: { Version: version } });
  const error = await failure(h.client.runtime.CheckpointPod({}), status.UNIMPLEMENTED);
  assert.equal(error.details, "pve-cri does not implement CheckpointPod yet");
  const imageError = await failure(h.client.image.PullImage({}), status.UNIMPLEMENTED);
  assert.equal(imageError.details, "pve-cri does not implement PullImage yet");
  using events = h.client.runtime.GetContainerEvents({});
  const streamError = await failure(events.next(), status.UNIMPLEMENTED);
  assert.equal(streamError.details, "pve-cri does not implement GetContainerEvents yet");
});

Deno.test("every RuntimeError code maps to its gRPC status, with the error's message", async () => {
  const expected: Record<StatusCode, status> = {
    InvalidArgument: status.INVALID_ARGUMENT,
    NotFound: status.NOT_FOUND,
    AlreadyExists: status.ALREADY_EXISTS,
    FailedPrecondition: status.FAILED_PRECONDITION,
    Aborted: status.ABORTED,
    Unavailable: status.UNAVAILABLE,
    DeadlineExceeded: status.DEADLINE_EXCEEDED,
    PermissionDenied: status.PERMISSION_DENIED,
    Unauthenticated: status.UNAUTHENTICATED,
    ResourceExhausted: status.RESOURCE_EXHAUSTED,
    Unimplemented: status.UNIMPLEMENTED,
    DataLoss: status.DATA_LOSS,
    Internal: status.INTERNAL,
  };
  const fail: UnaryHandler = (request) => {
    const code = request.container_id as StatusCode;
    return Promise.reject(new RuntimeError(code, `Container "abc": ${code} on purpose`));
  };
  await using h = await serve({ runtime: { ContainerStatus: fail } });
  for (const [code, grpcCode] of Object.entries(expected)) {
    const error = await failure(h.client.runtime.ContainerStatus({ container_id: code }), grpcCode);
    assert.equal(error.details, `Container "abc": ${code} on purpose`);
  }
});

Deno.test("a thrown non-RuntimeError becomes INTERNAL with its message and no stack", async () => {
  const typeError: UnaryHandler = () => {
    const thing = {} as { missing: () => void };
    thing.missing(); // a programming mistake, as it would happen
    return Promise.resolve({});
  };
  const stringThrown: UnaryHandler = () => Promise.reject("plain string thrown");
  await using h = await serve({ runtime: { Status: typeError, Version: stringThrown } });
  const error = await failure(h.client.runtime.Status({}), status.INTERNAL);
  assert.match(error.details, /missing is not a function/);
  assert.doesNotMatch(error.details, /\n|\bat .*:\d+|wrap_test\.ts/);
  const plain = await failure(h.client.runtime.Version({}), status.INTERNAL);
  assert.equal(plain.details, "plain string thrown");
  const logged = h.logs.find((line) => line.method === "Status" && line.msg === "CRI call failed");
  assert.equal(logged?.level, "error");
  assert.equal(logged?.code, "INTERNAL");
});

Deno.test("a handler that never resolves: the client gets DEADLINE_EXCEEDED at its deadline and the handler's signal aborts", async () => {
  let signal: AbortSignal | undefined;
  const stuck: UnaryHandler = (_request, ctx) => {
    signal = ctx.signal;
    return new Promise(() => {}); // ignores its signal too
  };
  await using h = await serve({ runtime: { RunPodSandbox: stuck } });
  const started = performance.now();
  await failure(h.client.runtime.RunPodSandbox({}, { deadlineMs: 300 }), status.DEADLINE_EXCEEDED);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 290, `answered after ${elapsed} ms: not before the deadline`);
  const reason = await aborted(signal);
  assert.ok(reason instanceof RuntimeError && reason.code === "DeadlineExceeded", String(reason));
  const done = h.logs.find((l) => l.method === "RunPodSandbox" && l.msg === "CRI call failed");
  assert.equal(done?.code, "DEADLINE_EXCEEDED");
});

Deno.test("a client cancelling a stream aborts the handler's signal", async () => {
  let signal: AbortSignal | undefined;
  const events: StreamHandler = async (_request, ctx, send) => {
    signal = ctx.signal;
    send({ container_id: "c1" });
    await waitForAbort(ctx);
  };
  await using h = await serve({ runtime: { GetContainerEvents: events } });
  const stream = h.client.runtime.GetContainerEvents({});
  assert.equal((await stream.next()).container_id, "c1");
  stream.cancel();
  assert.equal((await stream.status).code, status.CANCELLED);
  const reason = await aborted(signal);
  assert.match(String((reason as Error).message), /cancelled/);
});

Deno.test("the server keeps serving after handlers that throw, reject, or leave stray errors", async () => {
  const throwsSync: UnaryHandler = () => {
    throw new Error("thrown synchronously");
  };
  const rejects: UnaryHandler = () => Promise.reject(new Error("rejected"));
  const strayRejection: UnaryHandler = () => {
    void Promise.reject(new Error("stray rejection nobody awaits"));
    return Promise.resolve({});
  };
  const throwsInTimer: UnaryHandler = () => {
    setTimeout(() => {
      throw new Error("thrown in a timer callback");
    }, 0);
    return Promise.resolve({});
  };
  await using h = await serve({
    runtime: {
      Version: version,
      StartContainer: throwsSync,
      StopContainer: rejects,
      RemoveContainer: strayRejection,
      ReopenContainerLog: throwsInTimer,
    },
  });
  const sync = await failure(h.client.runtime.StartContainer({}), status.INTERNAL);
  assert.equal(sync.details, "thrown synchronously");
  const rejected = await failure(h.client.runtime.StopContainer({}), status.INTERNAL);
  assert.equal(rejected.details, "rejected");
  await h.client.runtime.RemoveContainer({});
  await h.client.runtime.ReopenContainerLog({});
  await sleep(50); // let the stray rejection and the timer fire
  assert.equal((await h.client.runtime.Version({})).runtime_name, "pve-cri");
  const stray = h.logs.filter((l) => l.level === "error" && /keeps serving/.test(l.msg));
  assert.deepEqual(stray.map((l) => l.error).sort(), [
    "stray rejection nobody awaits",
    "thrown in a timer callback",
  ]);
});

Deno.test("a response that cannot be encoded answers INTERNAL naming the method and the field", async () => {
  const malformed: UnaryHandler = () => Promise.resolve({ status: "not a message" });
  const malformedEvents: StreamHandler = (_request, _ctx, send) => {
    send({ container_id: "c1" });
    send({ pod_sandbox_status: 7 });
    return Promise.resolve();
  };
  await using h = await serve({
    runtime: { ContainerStatus: malformed, GetContainerEvents: malformedEvents, Version: version },
  });
  const error = await failure(h.client.runtime.ContainerStatus({}), status.INTERNAL);
  assert.match(
    error.details,
    /^ContainerStatus response cannot be encoded: .*status: object expected/,
  );
  using events = h.client.runtime.GetContainerEvents({});
  assert.equal((await events.next()).container_id, "c1");
  const streamError = await failure(events.next(), status.INTERNAL);
  assert.match(
    streamError.details,
    /GetContainerEvents response cannot be encoded: .*pod_sandbox_status/,
  );
  assert.equal((await h.client.runtime.Version({})).runtime_name, "pve-cri");
  const logged = h.logs.filter((l) => l.msg === "CRI call failed" && l.level === "error");
  assert.deepEqual(logged.map((l) => l.method), ["ContainerStatus", "GetContainerEvents"]);
});

Deno.test("int64 fields cross as decimal strings both ways, without losing precision", async () => {
  let timeout: unknown;
  const stop: UnaryHandler = (request) => {
    timeout = request.timeout;
    return Promise.resolve({});
  };
  const containerStatus: UnaryHandler = () =>
    Promise.resolve({
      status: {
        id: "c1",
        created_at: "1700000000123456789",
        started_at: "9223372036854775807",
        exit_code: 137,
      },
    });
  await using h = await serve({
    runtime: { StopContainer: stop, ContainerStatus: containerStatus },
  });
  await h.client.runtime.StopContainer({ container_id: "c1", timeout: "9007199254740993" });
  assert.equal(timeout, "9007199254740993");
  const { status: st } = await h.client.runtime.ContainerStatus({ container_id: "c1" });
  assert.equal(st.created_at, "1700000000123456789");
  assert.equal(st.started_at, "9223372036854775807");
  assert.equal(st.finished_at, "0");
  assert.equal(st.exit_code, 137);
});

Deno.test("a stream sends what the handler sends and ends when it resolves; a rejection ends it with the error's code", async () => {
  const events: StreamHandler = (_request, _ctx, send) => {
    for (const id of ["a", "b", "c"]) {
      send({ container_id: id, container_event_type: "CONTAINER_STARTED_EVENT" });
    }
    return Promise.resolve();
  };
  const containers: StreamHandler = (_request, _ctx, send) => {
    send({ containers: [{ id: "x" }] });
    return Promise.reject(new RuntimeError("NotFound", 'Sandbox "s" not found'));
  };
  await using h = await serve({
    runtime: { GetContainerEvents: events, StreamContainers: containers },
  });
  using stream = h.client.runtime.GetContainerEvents({});
  const received = [];
  for (let m = await stream.next(); m !== undefined; m = await stream.next()) received.push(m);
  assert.deepEqual(received.map((m) => [m.container_id, m.container_event_type]), [
    ["a", "CONTAINER_STARTED_EVENT"],
    ["b", "CONTAINER_STARTED_EVENT"],
    ["c", "CONTAINER_STARTED_EVENT"],
  ]);
  assert.equal((await stream.status).code, status.OK);

  using failing = h.client.runtime.StreamContainers({});
  assert.equal((await failing.next()).containers[0].id, "x");
  const error = await failure(failing.next(), status.NOT_FOUND);
  assert.equal(error.details, 'Sandbox "s" not found');
});

Deno.test("while the runtime is not ready every call answers UNAVAILABLE", async () => {
  let ready = false;
  await using h = await serve({ runtime: { Version: version } }, { isReady: () => ready });
  const error = await failure(h.client.runtime.Version({}), status.UNAVAILABLE);
  assert.equal(error.details, "runtime is not ready");
  ready = true;
  assert.equal((await h.client.runtime.Version({})).version, "0.1.0");
});

Deno.test("an isReady() that throws answers INTERNAL instead of leaving the call hanging", async () => {
  await using h = await serve({ runtime: { Version: version } }, {
    isReady: () => {
      throw new Error("readiness probe broke");
    },
  });
  const error = await failure(h.client.runtime.Version({}, { deadlineMs: 2_000 }), status.INTERNAL);
  assert.equal(error.details, "readiness probe broke");
});

Deno.test("calls log entry and exit with method, request_id and duration_ms; mutations at info, reads at debug", async () => {
  let requestId = "";
  const run: UnaryHandler = (_request, ctx) => {
    requestId = ctx.requestId;
    ctx.log.info("inside the handler");
    return Promise.resolve({ pod_sandbox_id: "p".repeat(64) });
  };
  const list: UnaryHandler = () => Promise.resolve({ containers: [] });
  const missing: UnaryHandler = () => Promise.reject(new RuntimeError("NotFound", "gone"));
  await using h = await serve({
    runtime: { RunPodSandbox: run, ListContainers: list, ContainerStatus: missing },
  });
  await h.client.runtime.RunPodSandbox({});
  await h.client.runtime.ListContainers({});
  await failure(h.client.runtime.ContainerStatus({}), status.NOT_FOUND);

  const of = (method: string) =>
    h.logs.filter((l) => l.method === method).map((l) => [l.level, l.msg, l.code]);
  assert.deepEqual(of("RunPodSandbox"), [
    ["info", "CRI call started", undefined],
    ["info", "inside the handler", undefined],
    ["info", "CRI call finished", "OK"],
  ]);
  assert.deepEqual(of("ListContainers"), [
    ["debug", "CRI call started", undefined],
    ["debug", "CRI call finished", "OK"],
  ]);
  assert.deepEqual(of("ContainerStatus"), [
    ["debug", "CRI call started", undefined],
    ["debug", "CRI call failed", "NOT_FOUND"],
  ]);
  const run_lines = h.logs.filter((l) => l.method === "RunPodSandbox");
  assert.ok(run_lines.every((l) => l.request_id === requestId && requestId.length > 0));
  assert.equal(typeof run_lines.at(-1)?.duration_ms, "number");
  const ids = new Set(h.logs.filter((l) => l.request_id).map((l) => l.request_id));
  assert.equal(ids.size, 3);
});

Deno.test("reads log at debug and mutations at info", () => {
  const reads = [
    "Version",
    "Status",
    "PodSandboxStatus",
    "ContainerStatus",
    "ImageStatus",
    "ListPodSandbox",
    "ListContainers",
    "ListImages",
    "ListMetricDescriptors",
    "ContainerStats",
    "ListPodSandboxStats",
    "ImageFsInfo",
    "RuntimeConfig",
    "GetContainerEvents",
    "StreamContainers",
  ];
  const mutations = [
    "RunPodSandbox",
    "StopPodSandbox",
    "RemovePodSandbox",
    "CreateContainer",
    "StartContainer",
    "StopContainer",
    "RemoveContainer",
    "UpdateContainerResources",
    "UpdateRuntimeConfig",
    "PullImage",
    "RemoveImage",
    "ExecSync",
    "Exec",
  ];
  for (const m of reads) assert.equal(logLevelOf(m), "debug", m);
  for (const m of mutations) assert.equal(logLevelOf(m), "info", m);
});

Deno.test("a handler for a method the proto does not have is refused at start", async () => {
  await assert.rejects(
    serve({ runtime: { RunPodSandBox: version } }),
    (error: Error) => error instanceof TypeError && /RunPodSandBox/.test(error.message),
  );
});
