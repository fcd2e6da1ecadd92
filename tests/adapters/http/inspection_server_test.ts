import assert from "node:assert/strict";
import { type LogFields, Logger, silentLogger } from "../../../lib/log.ts";
import { InvalidArgumentError, RuntimeError } from "../../../lib/errors.ts";
import {
  type InspectionViews,
  parseListenAddress,
  startInspectionServer,
} from "../../../adapters/http/mod.ts";

const sandbox = { id: "a".repeat(64), state: "SANDBOX_READY", created_at: 1700000000123456789n };
const views = (overrides: Partial<InspectionViews> = {}): InspectionViews => ({
  health: () => ({ ok: true, streams: 2 }),
  sandboxes: () => [sandbox],
  containers: () => [{ id: "c".repeat(64), pod_sandbox_id: sandbox.id }],
  stream: (
    id,
  ) => (sandbox.id.startsWith(id)
    ? { id: sandbox.id, events: [{ type: "SandboxRequested" }] }
    : undefined),
  drift: () => Promise.resolve({ drift: [{ kind: "missing CT", subject: "101" }] }),
  reconcile: () => Promise.resolve({ drift: [{ kind: "missing CT", repaired: "no" }] }),
  ...overrides,
});

/** Parsed JSON responses are read loosely, as a curl user would. */
// deno-lint-ignore no-explicit-any
type Json = any;

async function get(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: Json; headers: Headers }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return {
    status: response.status,
    body: text === "" ? undefined : JSON.parse(text),
    headers: response.headers,
  };
}

Deno.test("the inspection endpoint serves health, sandboxes, containers and streams as JSON", async () => {
  const server = await startInspectionServer({
    listen: "127.0.0.1:0",
    views: views(),
    log: silentLogger,
  });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await get(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { ok: true, streams: 2 });
    assert.match(health.headers.get("content-type")!, /^application\/json/);

    const sandboxes = await get(`${server.url}/v1/sandboxes`);
    assert.equal(sandboxes.status, 200);
    assert.deepEqual(sandboxes.body, [{ ...sandbox, created_at: "1700000000123456789" }]);

    const containers = await get(`${server.url}/v1/containers`);
    assert.equal(containers.body[0].pod_sandbox_id, sandbox.id);

    const stream = await get(`${server.url}/v1/streams/aaaa`);
    assert.equal(stream.status, 200);
    assert.equal(stream.body.id, sandbox.id);
  } finally {
    await server.close();
  }
});

Deno.test("the inspection endpoint answers 404, 405, 503 and 500 as JSON errors", async () => {
  let healthy = true;
  const server = await startInspectionServer({
    listen: "127.0.0.1:0",
    views: views({
      health: () => ({ ok: healthy, reason: healthy ? undefined : "store closed" }),
      containers: () => {
        throw new RuntimeError("Internal", "projection broke");
      },
    }),
    log: silentLogger,
  });
  try {
    const unknownPath = await get(`${server.url}/v1/nothing`);
    assert.equal(unknownPath.status, 404);
    assert.match(unknownPath.body.error, /\/v1\/nothing/);

    const unknownStream = await get(`${server.url}/v1/streams/zzz`);
    assert.equal(unknownStream.status, 404);
    assert.equal(unknownStream.body.error, 'Stream "zzz" not found');
    assert.equal((await get(`${server.url}/v1/streams/`)).status, 404);

    const post = await get(`${server.url}/v1/sandboxes`, { method: "POST", body: "{}" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    assert.match(post.body.error, /POST/);

    const failing = await get(`${server.url}/v1/containers`);
    assert.equal(failing.status, 500);
    assert.equal(failing.body.error, "View failed: projection broke");
    assert.doesNotMatch(JSON.stringify(failing.body), /at .*\.ts:\d+/);

    healthy = false;
    const unhealthy = await get(`${server.url}/healthz`);
    assert.equal(unhealthy.status, 503);
    assert.deepEqual(unhealthy.body, { ok: false, reason: "store closed" });

    const head = await get(`${server.url}/v1/sandboxes`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.body, undefined);
  } finally {
    await server.close();
  }
});

Deno.test("drift is a GET; a reconciliation pass changes things, so it is a POST", async () => {
  let passes = 0;
  const server = await startInspectionServer({
    listen: "127.0.0.1:0",
    views: views({
      reconcile: () => Promise.resolve({ drift: [], pass: ++passes }),
    }),
    log: silentLogger,
  });
  try {
    const drift = await get(`${server.url}/v1/drift`);
    assert.equal(drift.status, 200);
    assert.deepEqual(drift.body, { drift: [{ kind: "missing CT", subject: "101" }] });
    const wrong = await get(`${server.url}/v1/reconcile`);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "POST");
    assert.equal(passes, 0, "a GET runs no pass");
    const ran = await get(`${server.url}/v1/reconcile`, { method: "POST" });
    assert.equal(ran.status, 200);
    assert.deepEqual(ran.body, { drift: [], pass: 1 });
  } finally {
    await server.close();
  }
});

Deno.test("stream ids are URL-decoded before the view sees them", async () => {
  const seen: string[] = [];
  const server = await startInspectionServer({
    listen: "127.0.0.1:0",
    views: views({ stream: (id) => (seen.push(id), { id }) }),
    log: silentLogger,
  });
  try {
    assert.equal((await get(`${server.url}/v1/streams/sandbox%2Dabc`)).body.id, "sandbox-abc");
    assert.equal((await get(`${server.url}/v1/streams/%E0%A4%A`)).status, 400);
    assert.deepEqual(seen, ["sandbox-abc"]);
  } finally {
    await server.close();
  }
});

Deno.test("a listen address without a host binds loopback; IPv6 hosts are bracketed in the URL", async () => {
  const server = await startInspectionServer({ listen: ":0", views: views(), log: silentLogger });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
  } finally {
    await server.close();
  }
  let v6;
  try {
    v6 = await startInspectionServer({ listen: "[::1]:0", views: views(), log: silentLogger });
  } catch {
    return; // no IPv6 loopback on this machine
  }
  try {
    assert.match(v6.url, /^http:\/\/\[::1\]:\d+$/);
    assert.equal((await get(`${v6.url}/healthz`)).status, 200);
  } finally {
    await v6.close();
  }
});

Deno.test("listen addresses parse as HOST:PORT, [IPV6]:PORT or :PORT and refuse anything else", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:10250"), { hostname: "127.0.0.1", port: 10250 });
  assert.deepEqual(parseListenAddress("[::1]:8080"), { hostname: "::1", port: 8080 });
  assert.deepEqual(parseListenAddress(":8080"), { hostname: "127.0.0.1", port: 8080 });
  assert.deepEqual(parseListenAddress("localhost:0"), { hostname: "localhost", port: 0 });
  for (const bad of ["", "127.0.0.1", "[::1]", "::1:80", "host:", "127.0.0.1:65536", "h:-1"]) {
    assert.throws(() => parseListenAddress(bad), InvalidArgumentError, bad);
  }
});

Deno.test("a port already in use is refused with an error naming the address", async () => {
  const first = await startInspectionServer({
    listen: "127.0.0.1:0",
    views: views(),
    log: silentLogger,
  });
  try {
    const taken = first.url.replace("http://", "");
    await assert.rejects(
      startInspectionServer({ listen: taken, views: views(), log: silentLogger }),
      (error: Error) => error instanceof RuntimeError && error.message.includes(`"${taken}"`),
    );
  } finally {
    await first.close();
  }
});

Deno.test("a failing view is logged with its message", async () => {
  const logs: LogFields[] = [];
  const log = new Logger("debug", {}, { write: (line) => logs.push(JSON.parse(line)) });
  const server = await startInspectionServer({
    listen: "127.0.0.1:0",
    views: views({
      sandboxes: () => {
        throw new TypeError("boom");
      },
    }),
    log,
  });
  try {
    assert.equal((await get(`${server.url}/v1/sandboxes`)).status, 500);
  } finally {
    await server.close();
  }
  const failed = logs.find((l) => l.msg === "Inspection view failed");
  assert.equal(failed?.error, "boom");
  assert.equal(failed?.path, "/v1/sandboxes");
});
