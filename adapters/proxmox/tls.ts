/**
 * How the client trusts the node: the system roots (default), a CA file (a PVE cluster's
 * `pve-root-ca.pem`), or a pinned SHA-256 certificate fingerprint. Deno's createHttpClient
 * cannot pin, so connections are made with node:tls; a pinned connection is checked right
 * after the handshake, before a single byte of a request (and its credentials) is sent.
 */
import net from "node:net";
import tls from "node:tls";
import { InvalidArgumentError } from "../../lib/errors.ts";

export interface TlsOptions {
  /** PEM text of the CA to trust instead of the system roots. */
  caPem?: string;
  /** Path of that PEM file. */
  caFile?: string;
  /** SHA-256 fingerprint of the node certificate (`AA:BB:…`; case and colons are free). */
  fingerprint?: string;
  /** Allow a plain `http://` URL (no TLS at all). */
  insecure?: boolean;
}

/** The server's certificate is not the pinned one, or not signed by a trusted CA. */
export class UntrustedServerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UntrustedServerError";
  }
}

export function normalizeFingerprint(fingerprint: string): string {
  const hex = fingerprint.replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new InvalidArgumentError(`Invalid SHA-256 fingerprint: "${fingerprint}"`);
  }
  return hex.match(/../g)!.join(":");
}

/** Opens one connection to the node, verified as configured. */
export type Connector = () => Promise<net.Socket>;

/** Builds the connector for a base URL; refuses http:// unless insecure. */
export function createConnector(url: URL, options: TlsOptions): Connector {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (url.protocol === "http:") {
    if (!options.insecure) {
      throw new InvalidArgumentError(
        `Refusing plain HTTP to "${url.host}": set tls.insecure to allow it`,
      );
    }
    const port = Number(url.port || 80);
    return () => connected(net.connect({ host, port }), "connect");
  }
  if (url.protocol !== "https:") {
    throw new InvalidArgumentError(`Unsupported URL scheme "${url.protocol}": use https`);
  }
  const port = Number(url.port || 443);
  const servername = net.isIP(host) === 0 ? host : undefined;
  if (options.fingerprint !== undefined) {
    const pinned = normalizeFingerprint(options.fingerprint);
    return async () => {
      // The fingerprint is the trust: PVE nodes present certificates of their own cluster CA.
      const socket = await connected(
        tls.connect({
          host,
          port,
          rejectUnauthorized: false,
          ...(servername ? { servername } : {}),
        }),
        "secureConnect",
      ) as tls.TLSSocket;
      const actual = socket.getPeerCertificate()?.fingerprint256 ?? "";
      if (actual.toUpperCase() !== pinned) {
        socket.destroy();
        throw new UntrustedServerError(
          `certificate fingerprint ${actual} does not match the pinned ${pinned}`,
        );
      }
      return socket;
    };
  }
  const ca = options.caPem ??
    (options.caFile === undefined ? undefined : Deno.readTextFileSync(options.caFile));
  return () =>
    connected(
      tls.connect({
        host,
        port,
        ...(servername ? { servername } : {}),
        ...(ca === undefined ? {} : { ca }),
      }),
      "secureConnect",
    ).catch((error: Error & { code?: string }) => {
      if (
        /certificate|CERT|self.signed|UnknownIssuer|InvalidCertificate|NotValidForName/i.test(
          `${error.code ?? ""} ${error.message}`,
        )
      ) {
        throw new UntrustedServerError(`certificate not trusted: ${error.message}`, {
          cause: error,
        });
      }
      throw error;
    });
}

function connected(socket: net.Socket, event: "connect" | "secureConnect"): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.once("error", fail);
    socket.once(event, () => {
      socket.off("error", fail);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
