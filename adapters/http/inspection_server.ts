/**
 * The state-inspection endpoint: read-only JSON views of pve-cri's state for operators and
 * tests (`curl http://127.0.0.1:PORT/v1/sandboxes`). It renders what the views return and
 * knows nothing of the kernel; the views redact secrets (container env values) themselves.
 */
import { errorMessage, RuntimeError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { httpUrl, parseListenAddress } from "./listen_address.ts";

/** The data behind each route; each call reads the current state. */
export interface InspectionViews {
  /** GET /healthz: 200 when `ok`, else 503; the whole object is the body. */
  health(): { ok: boolean } & Record<string, unknown>;
  /** GET /v1/sandboxes */
  sandboxes(): unknown[];
  /** GET /v1/containers */
  containers(): unknown[];
  /** GET /v1/streams/{id}: events and current state of one stream; undefined → 404. */
  stream(idOrPrefix: string): unknown | undefined;
  /** GET /v1/drift: the log against Proxmox and the node, nothing changed. */
  drift(): Promise<unknown>;
  /** POST /v1/reconcile: a reconciliation pass now, repairing pve-cri's own leaks. */
  reconcile(): Promise<unknown>;
}

export interface InspectionServerOptions {
  /**
   * `HOST:PORT`, `[IPV6]:PORT` or `:PORT`. Without a host it listens on loopback
   * (127.0.0.1) only: the views show pod names, labels and annotations, so exposing them
   * beyond the node is an explicit choice. Port 0 picks a free port.
   */
  listen: string;
  views: InspectionViews;
  log: Logger;
}

export interface InspectionServer {
  /** `http://127.0.0.1:PORT`, with the port actually bound. */
  readonly url: string;
  /** Stops listening and waits for open requests to finish. */
  close(): Promise<void>;
}

const STREAM_PREFIX = "/v1/streams/";

/** Starts the inspection endpoint. */
export function startInspectionServer(options: InspectionServerOptions): Promise<InspectionServer> {
  const { views, log } = options;
  const address = parseListenAddress(options.listen);

  const handle = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const route = routeOf(path, views);
    if (route === undefined) return json(404, { error: `Not found: "${path}"` });
    const allowed = route.post ? ["POST"] : ["GET", "HEAD"];
    if (!allowed.includes(request.method)) {
      return json(405, {
        error: `Method ${request.method} not allowed: use ${allowed[0]}`,
      }, { allow: allowed.join(", ") });
    }
    try {
      return await route.view();
    } catch (error) {
      // The message helps the operator; the stack stays in our logs only.
      log.error("Inspection view failed", { path, error: errorMessage(error) });
      return json(500, { error: `View failed: ${errorMessage(error)}` });
    }
  };

  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: address.hostname,
        port: address.port,
        onListen: (addr) => {
          const url = httpUrl({ hostname: address.hostname, port: addr.port });
          log.info("Inspection endpoint listening", { url });
          resolve({
            url,
            close: async () => {
              await server.shutdown();
            },
          });
        },
        onError: (error) => {
          log.error("Inspection request failed", { error: errorMessage(error) });
          return json(500, { error: "Internal error" });
        },
      }, async (request) => {
        const started = performance.now();
        const response = await handle(request);
        log.debug("Inspection request", {
          method: request.method,
          path: new URL(request.url).pathname,
          status: response.status,
          duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
        });
        return response;
      });
    } catch (error) {
      reject(
        new RuntimeError(
          "Unavailable",
          `Cannot listen on "${options.listen}": ${errorMessage(error)}`,
          {
            cause: error,
          },
        ),
      );
    }
  });
}

interface Route {
  view: () => Response | Promise<Response>;
  /** Changes something: POST only. */
  post?: boolean;
}

/** The view for a path, or undefined when no route matches. */
function routeOf(path: string, views: InspectionViews): Route | undefined {
  switch (path) {
    case "/healthz":
      return {
        view: () => {
          const health = views.health();
          return json(health.ok ? 200 : 503, health);
        },
      };
    case "/v1/sandboxes":
      return { view: () => json(200, views.sandboxes()) };
    case "/v1/containers":
      return { view: () => json(200, views.containers()) };
    case "/v1/drift":
      return { view: async () => json(200, await views.drift()) };
    case "/v1/reconcile":
      return { view: async () => json(200, await views.reconcile()), post: true };
  }
  if (!path.startsWith(STREAM_PREFIX) || path.length === STREAM_PREFIX.length) return undefined;
  const raw = path.slice(STREAM_PREFIX.length);
  if (raw.includes("/")) return undefined;
  return { view: () => streamView(views, raw) };
}

function streamView(views: InspectionViews, raw: string): Response {
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    return json(400, { error: `Malformed stream id: "${raw}"` });
  }
  const stream = views.stream(id);
  return stream === undefined
    ? json(404, { error: `Stream "${id}" not found` })
    : json(200, stream);
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  // int64 values may arrive as bigint; JSON has no such type, so they become strings.
  const text = JSON.stringify(
    body,
    (_key, value) => typeof value === "bigint" ? value.toString() : value,
    2,
  );
  return new Response(text + "\n", {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}
