/** Parsing of `host:port` listen addresses for the HTTP endpoint. */
import { InvalidArgumentError } from "../../lib/errors.ts";

export interface ListenAddress {
  hostname: string;
  port: number;
}

/** Where the endpoint listens when the address names no host: loopback only. */
export const DEFAULT_HOSTNAME = "127.0.0.1";

/**
 * `127.0.0.1:10250`, `[::1]:8080`, `localhost:0`; a bare `:8080` or `8080` means loopback.
 * Port 0 picks a free port.
 */
export function parseListenAddress(listen: string): ListenAddress {
  const match = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d+)$/.exec(listen.trim());
  const invalid = (why: string) =>
    new InvalidArgumentError(`Invalid listen address "${listen}": ${why}`);
  if (match === null) throw invalid("use HOST:PORT, [IPV6]:PORT or :PORT");
  const hostname = match[1] ?? match[2] ?? "";
  const port = Number(match[3]);
  if (!Number.isInteger(port) || port > 65535) throw invalid("port must be 0 to 65535");
  return { hostname: hostname === "" ? DEFAULT_HOSTNAME : hostname, port };
}

/** `http://host:port`, with IPv6 hosts in brackets. */
export function httpUrl(address: ListenAddress): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `http://${host}:${address.port}`;
}
