/**
 * How the client trusts the node: the system roots (default), a CA file (a PVE cluster's
 * `pve-root-ca.pem`), or a pinned SHA-256 certificate fingerprint. Deno's createHttpClient
 * cannot pin, so every mode goes through node:https; a pinned connection is checked right
 * after the handshake, before a single byte of the request (and its credentials) is sent.
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { InvalidArgumentError } from "../../lib/errors.ts";

export interface TlsOptions {
  /** PEM text of the CA to trust instead of the system roots. */
  caPem?: string;
  /** Path of that PEM file. */
  caFile?: string;
  /** SHA-256 fingerprint of the node certificate (`AA:BB:…`, case and colons free). */
  fingerprint?: string;
  /** Allow a plain `http://` URL (no TLS at all). */
  insecure?: boolean;
}

/** Error thrown when the server's certificate is not the pinned one. */
export class FingerprintMismatchError extends Error {
  constructor(readonly expected: string, readonly actual: string) {
    super(`certificate fingerprint ${actual} does not match the pinned ${expected}`);
    this.name = "FingerprintMismatchError";
  }
}

export function normalizeFingerprint(fingerprint: string): string {
  const hex = fingerprint.replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new InvalidArgumentError(`Invalid SHA-256 fingerprint: "${fingerprint}"`);
  }
  return hex.match(/../g)!.join(":");
}

class PinnedAgent extends https.Agent {
  readonly #fingerprint: string;

  constructor(fingerprint: string, agentOptions: https.AgentOptions) {
    super(agentOptions);
    this.#fingerprint = fingerprint;
  }

  // Deno's node:https accepts the callback form: the socket is handed over once verified.
  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (error: Error | null, socket: Duplex) => void,
  ): Duplex {
    const socket = tls.connect({
      ...(options.host == null ? {} : { host: options.host }),
      ...(options.port == null ? {} : { port: Number(options.port) }),
      rejectUnauthorized: false, // the fingerprint is the trust: PVE self-signs its nodes
    });
    const fail = (error: Error) => {
      socket.destroy();
      callback?.(error, socket);
    };
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      socket.off("error", fail);
      const actual = socket.getPeerCertificate()?.fingerprint256 ?? "";
      if (actual.toUpperCase() !== this.#fingerprint) {
        fail(new FingerprintMismatchError(this.#fingerprint, actual));
        return;
      }
      callback?.(null, socket);
    });
    // Returning nothing makes the agent wait for the callback (Node and Deno alike).
    return undefined as unknown as Duplex;
  }
}

/** Builds the agent for a base URL and TLS options; refuses http:// unless insecure. */
export function createAgent(url: URL, options: TlsOptions): http.Agent {
  const agentOptions = { keepAlive: true, maxSockets: 16 };
  if (url.protocol === "http:") {
    if (!options.insecure) {
      throw new InvalidArgumentError(
        `Refusing plain HTTP to "${url.host}": set tls.insecure to allow it`,
      );
    }
    return new http.Agent(agentOptions);
  }
  if (url.protocol !== "https:") {
    throw new InvalidArgumentError(`Unsupported URL scheme "${url.protocol}": use https`);
  }
  if (options.fingerprint !== undefined) {
    return new PinnedAgent(normalizeFingerprint(options.fingerprint), agentOptions);
  }
  const ca = options.caPem ??
    (options.caFile === undefined ? undefined : Deno.readTextFileSync(options.caFile));
  return new https.Agent({ ...agentOptions, ...(ca === undefined ? {} : { ca }) });
}
