/**
 * The simulator's HTTP(S) front: pveproxy's wire format. `{"data": …}` envelopes; errors as
 * status + reason phrase (the message's first line) + `{"data":null,"message":…,"errors"?}`;
 * 401 with an empty body; 501 for unknown paths and methods; error answers close the
 * connection. Served by node:https because Deno.serve cannot set a reason phrase.
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "../../../lib/log.ts";
import type { Caller } from "./access.ts";
import { Envelope, type SimNode } from "./endpoint.ts";
import type { FaultRule } from "./faults.ts";
import { handlerError, parameterError, PveHttpError } from "./http_error.ts";
import { type RawRequest, readParams } from "./request_params.ts";
import type { Router } from "./router.ts";
import { validateParams } from "./schema/validate.ts";
import { concatBytes } from "../../../lib/bytes.ts";

/** One API request as it arrived and how it was answered; for contract checks in tests. */
export interface RequestRecord {
  method: string;
  /** Path below `/api2/json` as sent (segments still percent-encoded). */
  path: string;
  /** Parameters as sent (query and body), path parameters excluded. */
  params: Record<string, unknown>;
  json: boolean;
  status: number;
  /** The `data` of a successful answer. */
  data?: unknown;
}

export interface ServerOptions {
  node: SimNode;
  router: Router;
  logger: Logger;
  /** PEM cert and key; plain HTTP when absent. */
  tls?: { cert: string; key: string };
  /** Called for every API request once answered. */
  onRequest?: (record: RequestRecord) => void;
  /** Delay before a 401, as pveproxy's 3 s (default 0 here: tests stay fast). */
  authFailureDelayMs?: number;
}

export interface SimServer {
  readonly port: number;
  readonly hostname: string;
  close(): Promise<void>;
}

const apiPrefix = "/api2/json";

export async function startServer(
  options: ServerOptions,
  listen: { hostname: string; port: number },
): Promise<SimServer> {
  const sockets = new Set<Socket>();
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", () => {
      const body = chunks.length === 1 ? chunks[0]! : concatBytes(chunks);
      void handle(options, req, res, body);
    });
  };
  const server = options.tls === undefined
    ? http.createServer(handler)
    : https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler);
  server.keepAliveTimeout = 10_000;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("secureConnection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.hostname, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    hostname: listen.hostname,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

async function handle(
  options: ServerOptions,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: Uint8Array,
): Promise<void> {
  const method = req.method ?? "GET";
  const url = new URL(req.url ?? "/", "http://sim");
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (typeof value === "string") headers.set(key, value);
    else if (Array.isArray(value)) headers.set(key, value.join(", "));
  }
  const raw: RawRequest = { method, url, headers, body };
  if (url.pathname.startsWith("/_sim/")) return control(options, raw, res);
  if (!url.pathname.startsWith(`${apiPrefix}/`)) {
    return send(res, new PveHttpError(501, "no such uri"));
  }
  const path = url.pathname.slice(apiPrefix.length);
  const record: RequestRecord = {
    method,
    path,
    params: {},
    json: false,
    status: 0,
  };
  try {
    const faults = options.node.faults.take(method, record.path);
    if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.drop === "before") return void res.socket?.destroy();
    const match = options.router.match(method, path);
    const input = await readParams(raw);
    record.params = input.params;
    record.json = input.json;
    if (faults.status !== undefined) {
      throw new PveHttpError(faults.status, faults.message ?? "Injected fault");
    }
    if (match === undefined) {
      throw new PveHttpError(
        501,
        `Method '${method} ${apiPrefix}${safeDecode(path)}' not implemented`,
      );
    }
    const { endpoint, pathParams } = match;
    let caller: Caller | undefined;
    if (!endpoint.public) {
      try {
        caller = options.node.access.authenticate(headers, method);
      } catch (error) {
        if (options.authFailureDelayMs) {
          await new Promise((r) => setTimeout(r, options.authFailureDelayMs));
        }
        throw error;
      }
    }
    if (endpoint.allowToken === false && /PVEAPIToken/.test(headers.get("authorization") ?? "")) {
      throw new PveHttpError(
        403,
        `Permission check failed (URI '${apiPrefix}${
          safeDecode(path)
        }' not available with API token, need proper ticket.)`,
      );
    }
    for (const [name, value] of Object.entries(pathParams)) {
      if (Object.hasOwn(input.params, name) && String(input.params[name]) !== value) {
        throw parameterError({
          [name]: "duplicate parameter (already defined in URI) with conflicting values!",
        });
      }
    }
    const { values, errors } = validateParams(
      endpoint.params,
      { ...input.params, ...pathParams },
      { json: input.json },
    );
    if (Object.keys(errors).length > 0) throw parameterError(errors);
    if (values.node !== undefined && values.node !== options.node.name) {
      throw handlerError(
        `hostname lookup '${values.node}' failed - failed to get address info for: ${values.node}: Name or service not known`,
      );
    }
    if (faults.lockTimeout && values.vmid !== undefined && method !== "GET") {
      throw handlerError(
        `can't lock file '/run/lock/lxc/pve-config-${values.vmid}.lock' - got timeout`,
      );
    }
    const result = await endpoint.handle({
      params: values,
      caller,
      faults,
      ...(input.file === undefined ? {} : { file: input.file }),
    });
    if (faults.drop === "after") return void res.socket?.destroy();
    record.status = 200;
    record.data = result instanceof Envelope ? result.data : result;
    send(res, result);
  } catch (error) {
    const pveError = error instanceof PveHttpError
      ? error
      : new PveHttpError(500, error instanceof Error ? error.message : String(error));
    if (!(error instanceof PveHttpError)) {
      options.logger.warn("simulator handler failed", {
        path: record.path,
        error: pveError.message,
      });
    }
    record.status = pveError.status;
    send(res, pveError);
  } finally {
    if (record.status !== 0) options.onRequest?.(record);
  }
}

function send(res: http.ServerResponse, result: unknown): void {
  if (result instanceof PveHttpError) {
    const reason = reasonPhrase(result.message);
    const body = result.status === 401 ? "" : JSON.stringify({
      data: null,
      message: `${result.message}\n`,
      ...(result.errors === undefined ? {} : { errors: result.errors }),
    });
    res.writeHead(result.status, reason, {
      "content-type": "application/json;charset=UTF-8",
      "content-length": Buffer.byteLength(body),
      connection: "close",
    });
    res.end(body);
    return;
  }
  const envelope = result instanceof Envelope
    ? { data: result.data, ...result.extra }
    : { data: result ?? null };
  const body = JSON.stringify(envelope);
  res.writeHead(200, "OK", {
    "content-type": "application/json;charset=UTF-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** The message's first line, as pve-http-server makes the reason; printable ASCII only. */
function reasonPhrase(message: string): string {
  const first = message.split("\n")[0]!.replace(/[^\x20-\x7e]/g, "?").trim();
  return first === "" ? "Error" : first;
}

/** `/_sim/faults` (GET list, POST add, DELETE clear) and `/_sim/locks` (POST set or clear). */
function control(options: ServerOptions, raw: RawRequest, res: http.ServerResponse): void {
  const { node } = options;
  try {
    node.access.authenticate(raw.headers, "GET");
    const body = raw.body.length > 0 ? JSON.parse(new TextDecoder().decode(raw.body)) : {};
    const route = `${raw.method} ${raw.url.pathname}`;
    if (route === "GET /_sim/faults") return send(res, node.faults.list());
    if (route === "POST /_sim/faults") return send(res, { id: node.faults.add(body as FaultRule) });
    if (route === "DELETE /_sim/faults") {
      node.faults.clear();
      return send(res, null);
    }
    if (route === "POST /_sim/locks") {
      const { vmid, lock } = body as { vmid: number; lock: string | null };
      const parsed = node.cts.load(vmid);
      if (lock === null) delete parsed.config.options.lock;
      else parsed.config.options.lock = lock;
      node.cts.write(vmid, parsed.config);
      return send(res, null);
    }
    send(res, new PveHttpError(501, `no such control: ${route}`));
  } catch (error) {
    send(res, error instanceof PveHttpError ? error : new PveHttpError(400, String(error)));
  }
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
