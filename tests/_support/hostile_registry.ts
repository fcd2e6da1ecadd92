/**
 * Registries that misbehave, on loopback: one that accepts connections and never answers,
 * one that answers with bytes that are not HTTP, one whose manifests are not JSON, one that
 * streams a manifest without end.
 */
export type Misbehaviour = "silent" | "garbage" | "not-json" | "endless";

export interface HostileRegistry extends AsyncDisposable {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Connections accepted so far. */
  connections(): number;
}

export function startHostileRegistry(how: Misbehaviour): HostileRegistry {
  if (how === "silent" || how === "garbage") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const open = new Set<Deno.Conn>();
    let count = 0;
    const accepting = (async () => {
      for await (const conn of listener) {
        count++;
        open.add(conn);
        if (how === "garbage") {
          const garbage = new TextEncoder().encode("\x00\x01SSH-2.0-not-a-registry\r\n\xff\xfe");
          conn.write(garbage).catch(() => {}).finally(() => {
            // Read what the client sent, then hang up.
            setTimeout(() => {
              try {
                conn.close();
              } catch { /* gone */ }
              open.delete(conn);
            }, 20);
          });
        }
      }
    })().catch(() => {});
    return {
      host: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
      connections: () => count,
      async [Symbol.asyncDispose]() {
        listener.close();
        for (const conn of open) {
          try {
            conn.close();
          } catch { /* gone */ }
        }
        await accepting;
      },
    };
  }
  let count = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    count++;
    const path = new URL(request.url).pathname;
    if (path === "/v2/") return new Response("{}", { status: 200 });
    const headers = { "content-type": "application/vnd.oci.image.manifest.v1+json" };
    if (how === "not-json") return new Response("<html>maintenance</html>", { headers });
    const chunk = new TextEncoder().encode(`{"padding":"${"x".repeat(64 * 1024)}`);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(chunk);
      },
    });
    return new Response(body, { headers });
  });
  return {
    host: `127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    connections: () => count,
    async [Symbol.asyncDispose]() {
      await server.shutdown().catch(() => {});
    },
  };
}
