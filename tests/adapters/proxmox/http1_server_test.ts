/**
 * The simulator's HTTP/1.1 server on a raw TCP connection: what a client other than ours may
 * send (pipelining, chunked bodies, Expect: 100-continue, HTTP/1.0, garbage), keep-alive and
 * its idle timeout, dropped connections, and close() with connections open.
 */
import assert from "node:assert/strict";
import { type Http1Handler, serveHttp1 } from "../../../adapters/proxmox/sim/http1_server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Echoes method, target and body; `/drop` drops the connection, `/close` answers and closes. */
const echo: Http1Handler = (request) => {
  if (request.target === "/drop") return Promise.resolve("drop");
  return Promise.resolve({
    status: 200,
    reason: "Fine Thanks",
    headers: { "content-type": "text/plain" },
    body: encoder.encode(`${request.method} ${request.target} ${decoder.decode(request.body)}`),
    close: request.target === "/close",
  });
};

async function withServer(
  run: (port: number) => Promise<void>,
  options: { idleTimeoutMs?: number } = {},
): Promise<void> {
  const server = serveHttp1({ hostname: "127.0.0.1", port: 0, ...options }, echo);
  try {
    await run(server.port);
  } finally {
    await server.close();
  }
}

/**
 * Writes `text`, then reads until the server closes or `until` holds for what arrived. A server
 * that does neither within 5 s fails the test rather than hanging it.
 */
async function exchange(
  conn: Deno.Conn,
  text: string,
  until: (received: string) => boolean = () => false,
): Promise<{ received: string; closed: boolean }> {
  if (text !== "") await conn.write(encoder.encode(text));
  let received = "";
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, 5000);
  try {
    const buffer = new Uint8Array(65536);
    for (;;) {
      if (received !== "" && until(received)) return { received, closed: false };
      const n = await conn.read(buffer).catch(() => null);
      if (timedOut) throw new Error(`no answer within 5 s; received ${JSON.stringify(received)}`);
      if (n === null) return { received, closed: true };
      received += decoder.decode(buffer.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("keep-alive: two requests on one connection, the custom reason phrase, content-length", async () => {
  await withServer(async (port) => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const first = await exchange(
      conn,
      "GET /a?x=1 HTTP/1.1\r\nhost: sim\r\n\r\n",
      (t) => t.endsWith("GET /a?x=1 "),
    );
    assert.match(first.received, /^HTTP\/1\.1 200 Fine Thanks\r\n/);
    assert.match(first.received, /\r\ncontent-length: 11\r\n/);
    assert.match(first.received, /\r\nconnection: keep-alive\r\n/);
    const second = await exchange(
      conn,
      "POST /b HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello",
      (t) => t.endsWith("hello"),
    );
    assert.match(second.received, /\r\n\r\nPOST \/b hello$/);
  });
});

Deno.test("pipelined requests are answered in order; a chunked body is put together", async () => {
  await withServer(async (port) => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const { received } = await exchange(
      conn,
      "POST /1 HTTP/1.1\r\ncontent-length: 3\r\n\r\none" +
        "POST /2 HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\ntwo\r\n6;ext=1\r\n-three\r\n0\r\n\r\n" +
        "GET /3 HTTP/1.1\r\n\r\n",
      (t) => t.endsWith("GET /3 "),
    );
    const bodies = received.split("\r\n\r\n").slice(1).map((part) => part.split("HTTP/1.1")[0]);
    assert.deepEqual(bodies, ["POST /1 one", "POST /2 two-three", "GET /3 "]);
  });
});

Deno.test("Expect: 100-continue gets the interim answer before the body is sent", async () => {
  await withServer(async (port) => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const interim = await exchange(
      conn,
      "PUT /up HTTP/1.1\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n",
      (t) => t.endsWith("\r\n\r\n"),
    );
    assert.equal(interim.received, "HTTP/1.1 100 Continue\r\n\r\n");
    const final = await exchange(conn, "data", (t) => t.endsWith("PUT /up data"));
    assert.match(final.received, /^HTTP\/1\.1 200 /);
  });
});

Deno.test("HEAD answers the length without the body; HTTP/1.0 closes after one answer", async () => {
  await withServer(async (port) => {
    {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const { received } = await exchange(
        conn,
        "HEAD /h HTTP/1.1\r\n\r\nGET /g HTTP/1.1\r\n\r\n",
        (t) => t.endsWith("GET /g "),
      );
      const [head, next] = received.split("\r\n\r\n");
      assert.match(head!, /\r\ncontent-length: 8\r\n/, 'the length of "HEAD /h "');
      assert.match(next!, /^HTTP\/1\.1 200 /, "the next answer right after the head");
    }
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const old = await exchange(conn, "GET /old HTTP/1.0\r\n\r\n");
    assert.ok(old.closed);
    assert.match(old.received, /\r\nconnection: close\r\n\r\nGET \/old $/);
  });
});

Deno.test("a malformed request gets 400 and the connection closes", async () => {
  await withServer(async (port) => {
    for (
      const bad of [
        "NOT A REQUEST\r\n\r\n",
        "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: ten\r\n\r\n",
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
      ]
    ) {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const { received, closed } = await exchange(conn, bad);
      assert.ok(closed, `closed after ${JSON.stringify(bad)}`);
      assert.match(received, /^HTTP\/1\.1 400 Bad Request\r\n/, JSON.stringify(bad));
      assert.match(received, /\r\nconnection: close\r\n/);
    }
  });
});

Deno.test("a dropped request closes the connection unanswered; close: true closes after the answer", async () => {
  await withServer(async (port) => {
    {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      assert.deepEqual(await exchange(conn, "GET /drop HTTP/1.1\r\n\r\n"), {
        received: "",
        closed: true,
      });
    }
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const { received, closed } = await exchange(conn, "GET /close HTTP/1.1\r\n\r\n");
    assert.ok(closed);
    assert.match(received, /\r\nconnection: close\r\n\r\nGET \/close $/);
  });
});

Deno.test("an idle connection is closed after the idle timeout", async () => {
  await withServer(async (port) => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await exchange(conn, "GET /x HTTP/1.1\r\n\r\n", (t) => t.endsWith("GET /x "));
    const started = performance.now();
    const { closed } = await exchange(conn, "");
    assert.ok(closed);
    assert.ok(performance.now() - started >= 100, "not before the timeout");
  }, { idleTimeoutMs: 150 });
});

Deno.test("close() ends open connections, idle or mid-request, and stops listening", async () => {
  const server = serveHttp1({ hostname: "127.0.0.1", port: 0 }, echo);
  using idle = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  using partial = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await exchange(idle, "GET /i HTTP/1.1\r\n\r\n", (t) => t.endsWith("GET /i "));
  await partial.write(encoder.encode("POST /p HTTP/1.1\r\ncontent-length: 100\r\n\r\nabc"));
  await server.close();
  assert.ok((await exchange(idle, "")).closed);
  assert.ok((await exchange(partial, "")).closed);
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: server.port }));
});

Deno.test("a body larger than the read buffer arrives whole", async () => {
  await withServer(async (port) => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const body = "x".repeat(300_000);
    const { received } = await exchange(
      conn,
      `POST /big HTTP/1.1\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      (t) => t.endsWith(body),
    );
    assert.ok(received.endsWith(`\r\n\r\nPOST /big ${body}`));
  });
});
