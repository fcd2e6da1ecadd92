/**
 * Sends one API call and turns the answer into data or a typed error: auth headers, form
 * encoding, the `{"data": …}` envelope, retries of reads on transport failures (bounded, with
 * backoff), one re-login after a 401 with a ticket, and scrubbing of secrets. A write whose
 * outcome is unknown is not retried here: it surfaces as `WriteOutcomeUnknown` for the
 * operation to check what happened.
 */
import { concatBytes } from "../../lib/bytes.ts";
import type { RuntimeError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import type { Authenticator } from "./auth.ts";
import {
  classifyPveMessage,
  PveAuthenticationError,
  type PveErrorContext,
  PveLockedError,
  PveParameterError,
  PvePermissionError,
  PveServerError,
  PveTimeoutError,
  PveTransportError,
  PveUnreachableError,
} from "./errors.ts";
import { encodeParams, type WireParams } from "./params.ts";
import type { Redact } from "./redact.ts";
import {
  type HttpResponse,
  type StreamedBody,
  type Transport,
  TransportFailure,
} from "./transport.ts";

export interface CallOptions {
  /** A multipart body with one file (uploads); a large file is streamed, never held whole. */
  file?: { field: string; filename: string; data: Uint8Array | StreamedBody };
  /** Send without credentials (the ticket login itself). */
  anonymous?: boolean;
  /** This call's own limit (an upload's time grows with its size). */
  timeoutMs?: number;
}

export interface CallResult<T> {
  data: T;
  /** Envelope fields beside data (e.g. `total`). */
  extra: Record<string, unknown>;
}

/** A write got no answer, or a gateway error: it may or may not have happened. */
export class WriteOutcomeUnknown extends Error {
  readonly error: RuntimeError;

  constructor(error: RuntimeError) {
    super(error.message, { cause: error });
    this.name = "WriteOutcomeUnknown";
    this.error = error;
  }
}

export interface RequesterOptions {
  transport: Transport;
  auth: Authenticator;
  logger: Logger;
  redact: Redact;
  requestTimeoutMs: number;
  /** Attempts for a read (1 = no retry). */
  readAttempts: number;
  /** Attempts for any request that could not connect (1 = no retry). */
  connectAttempts: number;
  /** Attempts for any request whose config file lock timed out (1 = no retry). */
  lockAttempts: number;
  retryDelayMs: number;
}

/** Answers that come from a proxy in front of the node, not from the handler. */
const gatewayStatuses = new Set([502, 503, 504, 595, 596, 599]);

export class Requester {
  readonly #options: RequesterOptions;

  constructor(options: RequesterOptions) {
    this.#options = options;
  }

  async call<T>(
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    params: WireParams = {},
    options: CallOptions = {},
  ): Promise<CallResult<T>> {
    const read = method === "GET";
    const attempts = read ? this.#options.readAttempts : 1;
    for (let attempt = 1, lockAttempt = 1;; attempt++) {
      try {
        return await this.#once<T>(method, path, params, options);
      } catch (error) {
        // The config file's flock timed out before the handler did anything: any method
        // may go again, after a while longer each time.
        if (
          error instanceof PveLockedError && error.lock === "flock" &&
          lockAttempt < this.#options.lockAttempts
        ) {
          this.#options.logger.debug("proxmox request retried on a lock", { method, path });
          await delay(this.#options.retryDelayMs * 2 ** lockAttempt++);
          attempt--;
          continue;
        }
        // Never sent (a restarting pveproxy refuses connections for a few seconds): any
        // method goes again, for longer than a read that may have arrived.
        if (error instanceof PveUnreachableError && attempt < this.#options.connectAttempts) {
          this.#options.logger.debug("proxmox unreachable, retried", { method, path, attempt });
          await delay(this.#options.retryDelayMs * 2 ** (attempt - 1));
          continue;
        }
        const retriable = error instanceof PveTransportError || error instanceof PveTimeoutError;
        if (retriable && attempt < attempts) {
          this.#options.logger.debug("proxmox read retried", {
            method,
            path,
            attempt,
            error: error.message,
          });
          await delay(this.#options.retryDelayMs * 2 ** (attempt - 1));
          continue;
        }
        throw error;
      }
    }
  }

  async #once<T>(
    method: string,
    path: string,
    params: WireParams,
    options: CallOptions,
    refreshed = false,
  ): Promise<CallResult<T>> {
    const context: PveErrorContext = { method, path };
    const encoded = encodeParams(params);
    const headers: Record<string, string> = {
      accept: "application/json",
      ...(options.anonymous ? {} : await this.#options.auth.headers(method)),
    };
    let target = `/api2/json${path}`;
    let body: Uint8Array | StreamedBody | undefined;
    if (options.file !== undefined) {
      const multipart = multipartBody(params, options.file);
      headers["content-type"] = multipart.contentType;
      body = multipart.body;
    } else if (method === "GET" || method === "DELETE") {
      if (encoded !== "") target += `?${encoded}`;
    } else {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new TextEncoder().encode(encoded);
    }
    const started = performance.now();
    let response: HttpResponse;
    try {
      response = await this.#options.transport.send({
        method,
        path: target,
        headers,
        ...(body === undefined ? {} : { body }),
        timeoutMs: options.timeoutMs ?? this.#options.requestTimeoutMs,
      });
    } catch (error) {
      if (!(error instanceof TransportFailure)) throw error;
      const detail = this.#options.redact(error.message);
      const typed = error.timedOut
        ? new PveTimeoutError(`Proxmox ${method} ${path} timed out: ${detail}`, context)
        : error.mayHaveArrived
        ? new PveTransportError(`Proxmox ${method} ${path} failed: ${detail}`, context)
        : new PveUnreachableError(`Proxmox ${method} ${path} failed: ${detail}`, context);
      if (error.untrusted) {
        throw new PveTransportError(
          `Proxmox ${method} ${path}: TLS verification failed: ${detail}`,
          context,
        );
      }
      if (method !== "GET" && error.mayHaveArrived) throw new WriteOutcomeUnknown(typed);
      throw typed;
    }
    this.#options.logger.debug("proxmox call", {
      method,
      path,
      status: response.status,
      duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
    });
    if (
      response.status === 401 && !refreshed && !options.anonymous &&
      await this.#options.auth.refresh()
    ) {
      return await this.#once(method, path, params, options, true);
    }
    if (response.status !== 200) {
      const error = this.#httpError(response, { ...context, status: response.status });
      if (method !== "GET" && gatewayStatuses.has(response.status)) {
        throw new WriteOutcomeUnknown(error);
      }
      throw error;
    }
    let envelope: Record<string, unknown>;
    try {
      envelope = JSON.parse(response.body) as Record<string, unknown>;
    } catch {
      throw new PveServerError(`Proxmox ${method} ${path}: answer is not JSON`, context);
    }
    if (typeof envelope !== "object" || envelope === null || !("data" in envelope)) {
      throw new PveServerError(`Proxmox ${method} ${path}: answer has no "data"`, context);
    }
    const { data, ...extra } = envelope;
    return { data: data as T, extra };
  }

  #httpError(response: HttpResponse, context: PveErrorContext): RuntimeError {
    const redact = this.#options.redact;
    let message = "";
    let errors: Record<string, string> | undefined;
    try {
      const body = JSON.parse(response.body) as { message?: unknown; errors?: unknown };
      if (typeof body.message === "string") message = body.message.replace(/\n$/, "");
      if (typeof body.errors === "object" && body.errors !== null) {
        errors = Object.fromEntries(
          Object.entries(body.errors as Record<string, unknown>).map((
            [k, v],
          ) => [k, redact(String(v))]),
        );
      }
    } catch {
      // 401s and older servers: the reason phrase is all there is
    }
    const pveMessage = redact(message || response.reason || `HTTP ${response.status}`);
    const full = { ...context, pveMessage };
    const text = `Proxmox ${context.method} ${context.path} failed: ${pveMessage}`;
    const status = response.status;
    if (status === 400 && errors !== undefined) {
      const reasons = Object.entries(errors).map(([k, v]) => `${k}: ${v}`).join("; ");
      return new PveParameterError(`${text} (${reasons})`, errors, full);
    }
    if (status === 401) return new PveAuthenticationError(text, full);
    const classified = classifyPveMessage(text, pveMessage, full);
    if (classified !== undefined) return classified;
    if (status === 403) return new PvePermissionError(text, full);
    if (gatewayStatuses.has(status)) return new PveTransportError(text, full);
    if (status === 400) return new PveParameterError(text, {}, full);
    return new PveServerError(text, full);
  }
}

/**
 * A multipart/form-data body: the fields, then the file part, written out by hand so the
 * file can stream (FormData would hold it whole) and the length is known before sending.
 */
function multipartBody(
  params: WireParams,
  file: NonNullable<CallOptions["file"]>,
): { contentType: string; body: Uint8Array | StreamedBody } {
  const boundary = `----pve-cri-${crypto.randomUUID()}`;
  const quote = (text: string) => text.replace(/["\\\r\n]/g, "_");
  let head = "";
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    const text = typeof value === "boolean" ? (value ? "1" : "0") : String(value);
    head += `--${boundary}\r\ncontent-disposition: form-data; name="${quote(key)}"\r\n\r\n` +
      `${text}\r\n`;
  }
  head += `--${boundary}\r\ncontent-disposition: form-data; name="${quote(file.field)}"; ` +
    `filename="${quote(file.filename)}"\r\ncontent-type: application/octet-stream\r\n\r\n`;
  const headBytes = new TextEncoder().encode(head);
  const tail = new TextEncoder().encode(`\r\n--${boundary}--\r\n`);
  const contentType = `multipart/form-data; boundary=${boundary}`;
  const data = file.data;
  if (data instanceof Uint8Array) {
    return { contentType, body: concatBytes([headBytes, data, tail]) };
  }
  return {
    contentType,
    body: {
      length: headBytes.length + data.length + tail.length,
      async *chunks() {
        yield headBytes;
        yield* data.chunks();
        yield tail;
      },
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
