/**
 * The simulator's HTTP(S) front: pveproxy's wire format. `{"data": …}` envelopes; errors as
 * status + reason phrase (the message's first line) + `{"data":null,"message":…,"errors"?}`;
 * 401 with an empty body; 501 for unknown paths and methods; error answers close the
 * connection. Deno.serve cannot set a reason phrase, so it is served by http1_server.ts.
 */
import type { Logger } from "../../../lib/log.ts";
import type { Caller } from "./access.ts";
import { Envelope, type SimNode } from "./endpoint.ts";
import type { FaultRule } from "./faults.ts";
import { handlerError, parameterError, PveHttpError } from "./http_error.ts";
import { type RawRequest, readParams } from "./request_params.ts";
import type { Router } from "./router.ts";
import { validateParams } from "./schema/validate.ts";
import { type Http1Request, type Http1Response, serveHttp1 } from "./http1_server.ts";

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
  /** Called for every API request once its answer is made (just before it is written). */
  onRequest?: (record: RequestRecord) => void;
  /** Delay before a 401, as pveproxy's 3 s (default 0 here: tests stay fast). */
  authFailureDelayMs?: number;
  /** Where uploads spool (pveproxy's /var/tmp). */
  uploadDir: string;
}

export interface SimServer {
  readonly port: number;
  readonly hostname: string;
  close(): Promise<void>;
}

const apiPrefix = "/api2/json";

export function startServer(
  options: ServerOptions,
  listen: { hostname: string; port: number },
): SimServer {
  const server = serveHttp1(
    {
      ...listen,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      uploadDir: options.uploadDir,
    },
    (request) => handle(options, request),
  );
  return { port: server.port, hostname: listen.hostname, close: server.close };
}

async function handle(
  options: ServerOptions,
  request: Http1Request,
): Promise<Http1Response | "drop"> {
  const { method, headers, body } = request;
  const url = new URL(request.target, "http://sim");
  const raw: RawRequest = {
    method,
    url,
    headers,
    body,
    ...(request.form === undefined ? {} : { form: request.form }),
  };
  if (url.pathname.startsWith("/_sim/")) return control(options, raw);
  if (!url.pathname.startsWith(`${apiPrefix}/`)) return reply(new PveHttpError(501, "no such uri"));
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
    if (faults.drop === "before") return "drop";
    const match = options.router.match(method, path);
    const input = readParams(raw);
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
    if (faults.drop === "after") return "drop";
    record.status = 200;
    record.data = result instanceof Envelope ? result.data : result;
    return reply(result);
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
    return reply(pveError);
  } finally {
    if (record.status !== 0) options.onRequest?.(record);
  }
}

const encoder = new TextEncoder();
const jsonType = "application/json;charset=UTF-8";

/** A handler's result as pveproxy answers it; errors close the connection. */
function reply(result: unknown): Http1Response {
  if (result instanceof PveHttpError) {
    const body = result.status === 401 ? "" : JSON.stringify({
      data: null,
      message: `${result.message}\n`,
      ...(result.errors === undefined ? {} : { errors: result.errors }),
    });
    return {
      status: result.status,
      reason: reasonPhrase(result.message),
      headers: { "content-type": jsonType },
      body: encoder.encode(body),
      close: true,
    };
  }
  const envelope = result instanceof Envelope
    ? { data: result.data, ...result.extra }
    : { data: result ?? null };
  return {
    status: 200,
    reason: "OK",
    headers: { "content-type": jsonType },
    body: encoder.encode(JSON.stringify(envelope)),
  };
}

/** The message's first line, as pve-http-server makes the reason; printable ASCII only. */
function reasonPhrase(message: string): string {
  const first = message.split("\n")[0]!.replace(/[^\x20-\x7e]/g, "?").trim();
  return first === "" ? "Error" : first;
}

/** `/_sim/faults` (GET list, POST add, DELETE clear) and `/_sim/locks` (POST set or clear). */
function control(options: ServerOptions, raw: RawRequest): Http1Response {
  const { node } = options;
  try {
    node.access.authenticate(raw.headers, "GET");
    const body = raw.body.length > 0 ? JSON.parse(new TextDecoder().decode(raw.body)) : {};
    const route = `${raw.method} ${raw.url.pathname}`;
    if (route === "GET /_sim/faults") return reply(node.faults.list());
    if (route === "POST /_sim/faults") return reply({ id: node.faults.add(body as FaultRule) });
    if (route === "DELETE /_sim/faults") {
      node.faults.clear();
      return reply(null);
    }
    if (route === "POST /_sim/locks") {
      const { vmid, lock } = body as { vmid: number; lock: string | null };
      const parsed = node.cts.load(vmid);
      if (lock === null) delete parsed.config.options.lock;
      else parsed.config.options.lock = lock;
      node.cts.write(vmid, parsed.config);
      return reply(null);
    }
    return reply(new PveHttpError(501, `no such control: ${route}`));
  } catch (error) {
    return reply(error instanceof PveHttpError ? error : new PveHttpError(400, String(error)));
  }
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
