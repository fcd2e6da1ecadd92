/**
 * Where a registry's requests go, per registry domain, in the model of containerd's
 * `hosts.toml` (written as JSON in pve-cri's config file): mirrors tried in order, each
 * allowed to `resolve` (tags to digests) and/or `pull` (content by digest), then the
 * registry's own server. Each endpoint has its TLS settings: the system CA store, plus a CA
 * file; or plain HTTP for `insecure` registries. A registry on a loopback address with no
 * settings is tried over HTTPS, then plain HTTP, as docker and containerd treat localhost.
 */
import { InvalidArgumentError } from "../../lib/errors.ts";

export type Capability = "pull" | "resolve";

/** One mirror, as a `[host."URL"]` table of hosts.toml holds it. */
export interface MirrorSettings {
  /** `https://mirror.example:5000` (or `http://…`); `/v2` is added unless `overridePath`. */
  url: string;
  /** Default: both. */
  capabilities?: Capability[];
  /** A PEM file of CAs trusted for this mirror, on top of the system store. */
  ca?: string;
  /** The URL is the API root itself (containerd's `override_path`). */
  overridePath?: boolean;
}

/** Settings for one registry domain (`docker.io`, `registry.local:5000`). */
export interface RegistrySettings {
  /** The registry's own URL; default `https://<domain>` (`https://registry-1.docker.io` for docker.io). */
  server?: string;
  ca?: string;
  /** Plain HTTP to the registry itself. */
  insecure?: boolean;
  mirrors?: MirrorSettings[];
}

export interface Endpoint {
  /** The API root: `https://host:port/v2`. */
  root: string;
  /** `host:port`, for error texts. */
  host: string;
  capabilities: ReadonlySet<Capability>;
  /** Requests to a mirror carry `?ns=<domain>`, as containerd sends. */
  mirrorOf?: string;
  client: Deno.HttpClient | undefined;
  /** HTTPS first, then plain HTTP when the server does not speak TLS (loopback only). */
  httpFallback: boolean;
}

const systemBundles = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/cert.pem",
];

export class RegistryHosts {
  readonly #settings: Map<string, RegistrySettings>;
  readonly #clients = new Map<string, Deno.HttpClient | undefined>();
  readonly #systemCas: string[] | undefined;
  /** Loopback registries found to speak plain HTTP: asked that way from then on. */
  readonly #plain = new Set<string>();

  constructor(
    settings: Record<string, RegistrySettings> = {},
    options: { systemCas?: string[] } = {},
  ) {
    this.#settings = new Map(Object.entries(settings));
    this.#systemCas = options.systemCas ?? readSystemCas();
  }

  /** The endpoints to try for a registry domain, in order. */
  endpoints(domain: string): Endpoint[] {
    const settings = this.#settings.get(domain) ?? {};
    const out: Endpoint[] = [];
    for (const mirror of settings.mirrors ?? []) {
      const url = new URL(mirror.url);
      out.push({
        root: mirror.overridePath ? trimSlash(url.href) : `${trimSlash(url.href)}/v2`,
        host: url.host,
        capabilities: new Set(mirror.capabilities ?? ["pull", "resolve"]),
        mirrorOf: domain,
        client: this.#client(mirror.ca),
        httpFallback: false,
      });
    }
    const server = new URL(
      settings.server ??
        (domain === "docker.io"
          ? "https://registry-1.docker.io"
          : `${settings.insecure ? "http" : "https"}://${domain}`),
    );
    const plain = this.#plain.has(domain);
    const fallback = settings.server === undefined && !settings.insecure && isLoopback(domain);
    out.push({
      root: `${trimSlash(plain ? server.href.replace(/^https:/, "http:") : server.href)}/v2`,
      host: server.host,
      capabilities: new Set(["pull", "resolve"]),
      client: this.#client(settings.ca),
      httpFallback: fallback && !plain,
    });
    return out;
  }

  /** A loopback registry answered over plain HTTP: use it from now on. */
  rememberPlain(domain: string): void {
    this.#plain.add(domain);
  }

  isPlain(domain: string): boolean {
    return this.#plain.has(domain);
  }

  close(): void {
    for (const client of this.#clients.values()) client?.close();
    this.#clients.clear();
  }

  #client(caFile: string | undefined): Deno.HttpClient | undefined {
    const key = caFile ?? "";
    if (this.#clients.has(key)) return this.#clients.get(key);
    const cas = [...(this.#systemCas ?? [])];
    if (caFile !== undefined) {
      try {
        cas.push(Deno.readTextFileSync(caFile));
      } catch (error) {
        throw new InvalidArgumentError(
          `Registry CA file "${caFile}" cannot be read: ${(error as Error).message}`,
        );
      }
    }
    const client = cas.length === 0 ? undefined : Deno.createHttpClient({ caCerts: cas });
    this.#clients.set(key, client);
    return client;
  }
}

/** `localhost`, `127.0.0.0/8` and `[::1]`, with or without a port. */
export function isLoopback(domain: string): boolean {
  const host = domain.startsWith("[")
    ? domain.slice(1, domain.indexOf("]"))
    : domain.replace(/:\d+$/, "");
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** The node's CA bundle: HTTPS trusts what the operating system trusts. */
function readSystemCas(): string[] | undefined {
  for (const path of systemBundles) {
    try {
      return [Deno.readTextFileSync(path)];
    } catch {
      // try the next location
    }
  }
  return undefined;
}

/** Checks the `registries` section of the config file; errors name the offending key. */
export function parseRegistrySettings(
  raw: unknown,
  source: string,
): Record<string, RegistrySettings> {
  if (raw === undefined) return {};
  const fail = (what: string) => new InvalidArgumentError(`${source}: ${what}`);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw fail(`"registries" must be an object keyed by registry domain`);
  }
  const out: Record<string, RegistrySettings> = {};
  for (const [domain, value] of Object.entries(raw)) {
    const where = `registries["${domain}"]`;
    if (typeof value !== "object" || value === null) throw fail(`${where} must be an object`);
    const v = value as Record<string, unknown>;
    const settings: RegistrySettings = {};
    if (v.server !== undefined) settings.server = url(v.server, `${where}.server`, fail);
    if (v.ca !== undefined) settings.ca = text(v.ca, `${where}.ca`, fail);
    if (v.insecure !== undefined) {
      if (typeof v.insecure !== "boolean") throw fail(`${where}.insecure must be true or false`);
      settings.insecure = v.insecure;
    }
    if (v.mirrors !== undefined) {
      if (!Array.isArray(v.mirrors)) throw fail(`${where}.mirrors must be a list`);
      settings.mirrors = v.mirrors.map((m, i) => mirror(m, `${where}.mirrors[${i}]`, fail));
    }
    for (const key of Object.keys(v)) {
      if (!["server", "ca", "insecure", "mirrors"].includes(key)) {
        throw fail(`${where}.${key} is not a registry setting`);
      }
    }
    out[domain] = settings;
  }
  return out;
}

type Fail = (what: string) => Error;

function mirror(raw: unknown, where: string, fail: Fail): MirrorSettings {
  if (typeof raw !== "object" || raw === null) throw fail(`${where} must be an object`);
  const m = raw as Record<string, unknown>;
  const out: MirrorSettings = { url: url(m.url, `${where}.url`, fail) };
  if (m.capabilities !== undefined) {
    if (
      !Array.isArray(m.capabilities) ||
      !m.capabilities.every((c) => c === "pull" || c === "resolve")
    ) {
      throw fail(`${where}.capabilities must list "pull" and/or "resolve"`);
    }
    out.capabilities = m.capabilities as Capability[];
  }
  if (m.ca !== undefined) out.ca = text(m.ca, `${where}.ca`, fail);
  if (m.overridePath !== undefined) out.overridePath = m.overridePath === true;
  return out;
}

function url(value: unknown, where: string, fail: Fail): string {
  if (typeof value !== "string" || !/^https?:\/\/[^/]/.test(value)) {
    throw fail(`${where} must be an http(s) URL`);
  }
  return value;
}

function text(value: unknown, where: string, fail: Fail): string {
  if (typeof value !== "string" || value === "") throw fail(`${where} must be a file path`);
  return value;
}
