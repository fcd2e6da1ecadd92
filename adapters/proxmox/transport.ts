/**
 * One HTTP exchange with the node over node:http(s) with keep-alive. Knows nothing of PVE's
 * envelope; reports whether a failed request may have reached the server, which decides
 * whether a write may be sent again.
 */
import http from "node:http";
import https from "node:https";
import { createAgent, FingerprintMismatchError, type TlsOptions } from "./tls.ts";

export interface HttpRequest {
  method: string;
  /** Path and query below the base URL's origin. */
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  timeoutMs: number;
}

export interface HttpResponse {
  status: number;
  /** The HTTP reason phrase: PVE puts the first line of its error message there. */
  reason: string;
  body: string;
}

/** A request that got no answer. */
export class TransportFailure extends Error {
  /** False when the request certainly never reached the server (refused, TLS failure). */
  readonly mayHaveArrived: boolean;
  readonly timedOut: boolean;
  /** Not worth retrying: the server is not the one we trust. */
  readonly untrusted: boolean;

  constructor(
    message: string,
    flags: { mayHaveArrived: boolean; timedOut?: boolean; untrusted?: boolean },
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = "TransportFailure";
    this.mayHaveArrived = flags.mayHaveArrived;
    this.timedOut = flags.timedOut ?? false;
    this.untrusted = flags.untrusted ?? false;
  }
}

export interface Transport {
  send(request: HttpRequest): Promise<HttpResponse>;
  close(): void;
}

const notSentCodes = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

export class NodeHttpTransport implements Transport {
  readonly #base: URL;
  readonly #agent: http.Agent;
  readonly #module: typeof http | typeof https;

  constructor(baseUrl: string, tlsOptions: TlsOptions) {
    this.#base = new URL(baseUrl);
    this.#agent = createAgent(this.#base, tlsOptions);
    this.#module = this.#base.protocol === "http:" ? http : https;
  }

  send(request: HttpRequest): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      let written = false; // the whole request went out: the server may have acted on it
      let settled = false;
      const headers: Record<string, string | number> = { ...request.headers };
      if (request.body !== undefined) headers["content-length"] = request.body.length;
      const req = this.#module.request({
        protocol: this.#base.protocol,
        hostname: this.#base.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: this.#base.port || (this.#base.protocol === "http:" ? 80 : 443),
        method: request.method,
        path: request.path,
        headers,
        agent: this.#agent,
      }, (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (chunk: Uint8Array) => chunks.push(chunk));
        res.on("error", (error: Error) => fail(error));
        res.on("end", () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            reason: res.statusMessage ?? "",
            body: Buffer.concat(chunks).toString("utf8"),
          });
        });
      });
      const fail = (error: Error & { code?: string }, timedOut = false) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        const untrusted = error instanceof FingerprintMismatchError ||
          /certificate|CERT|self.signed|UnknownIssuer|InvalidCertificate/i.test(
            `${error.code ?? ""} ${error.message}`,
          );
        const mayHaveArrived = !untrusted && written && !notSentCodes.has(error.code ?? "");
        reject(new TransportFailure(error.message, { mayHaveArrived, timedOut, untrusted }, error));
      };
      const timer = setTimeout(
        () => fail(new Error(`no answer within ${request.timeoutMs} ms`), true),
        request.timeoutMs,
      );
      req.on("finish", () => written = true);
      req.on("error", (error: Error) => fail(error));
      req.end(request.body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
