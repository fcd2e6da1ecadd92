/**
 * A client of the OCI distribution API v2, for pulling: resolves a reference (tag, digest or
 * both) to this node's manifest and config, and streams blobs. Endpoints come from the
 * registry settings (mirrors, then the server); authentication follows the registry's
 * challenges. Every answer is checked (digests, sizes, media types, limits), every wait is
 * bounded by the caller's signal and a stall timeout, and every error names the host.
 */
import {
  DataLossError,
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  PermissionDeniedError,
  RuntimeError,
  UnauthenticatedError,
  UnavailableError,
} from "../../lib/errors.ts";
import { type Logger, silentLogger } from "../../lib/log.ts";
import { sha256Digest } from "../oci/digest.ts";
import { type ImageConfigFile, maxConfigBytes, parseImageConfig } from "../oci/image_config.ts";
import {
  choosePlatform,
  type Descriptor,
  type ImageManifest,
  maxManifestBytes,
  nodePlatform,
  parseManifest,
  type Platform,
} from "../oci/manifest.ts";
import { manifestAccept } from "../oci/media_types.ts";
import { canonicalReference, type ImageReference } from "../oci/reference.ts";
import { Authorizer, type RegistryCredentials, secretsOf, TokenCache } from "./auth.ts";
import { parseChallenges } from "./challenge.ts";
import type { Capability, Endpoint, RegistryHosts } from "./hosts.ts";

export interface RegistryClientOptions {
  hosts: RegistryHosts;
  tokens?: TokenCache;
  /** How long a request may wait for its answer's headers (default 30 s). */
  requestTimeoutMs?: number;
  /** How long a body may send nothing before the transfer fails (default 30 s). */
  stallTimeoutMs?: number;
  platform?: Platform;
  log?: Logger;
}

export interface ResolvedImage {
  /** What the reference stands for: an index's digest for a multi-platform image. */
  digest: string;
  /** This node's manifest (the same as `digest` for a single-platform image). */
  manifestDigest: string;
  manifest: ImageManifest;
  config: { descriptor: Descriptor; bytes: Uint8Array; file: ImageConfigFile };
  /** The host that answered the resolve. */
  host: string;
}

const maxRedirects = 5;
/** What a TLS client sees when the server speaks plain HTTP. */
const notTls = /InvalidContentType|corrupt message|HTTP response to HTTPS/i;
/** Registry error texts are quoted into ours; this much at most. */
const maxQuoted = 200;

export class RegistryClient {
  readonly #options: SessionOptions;

  constructor(options: RegistryClientOptions) {
    this.#options = {
      hosts: options.hosts,
      tokens: options.tokens ?? new TokenCache(),
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
      platform: options.platform ?? nodePlatform(),
      log: options.log ?? silentLogger,
    };
  }

  /** A session on one repository, with one pull's credentials. */
  repository(reference: ImageReference, credentials?: RegistryCredentials): RepositorySession {
    return new RepositorySession(reference, credentials, this.#options);
  }
}

interface SessionOptions {
  hosts: RegistryHosts;
  tokens: TokenCache;
  requestTimeoutMs: number;
  stallTimeoutMs: number;
  platform: Platform;
  log: Logger;
}

export class RepositorySession {
  readonly reference: ImageReference;
  readonly #options: SessionOptions;
  readonly #authorizer: Authorizer;
  readonly #secrets: string[];
  readonly #scope: string;
  readonly #name: string;

  constructor(
    reference: ImageReference,
    credentials: RegistryCredentials | undefined,
    options: SessionOptions,
  ) {
    this.reference = reference;
    this.#options = options;
    this.#authorizer = new Authorizer(credentials, options.tokens);
    this.#secrets = secretsOf(credentials);
    this.#scope = `repository:${reference.path}:pull`;
    this.#name = canonicalReference(reference);
  }

  /**
   * The reference's manifest for this node, checked against a pinned digest, and its config.
   */
  async resolve(signal: AbortSignal): Promise<ResolvedImage> {
    const ref = this.reference;
    const wanted = ref.digest ?? ref.tag!;
    const top = await this.#manifest(wanted, ref.digest === null ? "resolve" : "pull", signal);
    if (ref.digest !== null && top.digest !== ref.digest) {
      throw new DataLossError(
        `${this.#name}: the registry's manifest has digest ${top.digest}, not the pinned ${ref.digest}`,
      );
    }
    let current = top;
    let parsed = parseManifest(current.bytes, current.contentType, this.#where(current.host));
    for (let depth = 0; parsed.kind === "index"; depth++) {
      if (depth > 2) throw new DataLossError(`${this.#name}: image indexes nest too deeply`);
      const chosen = choosePlatform(parsed.index, this.#options.platform, this.#name);
      current = await this.#manifest(chosen.digest, "pull", signal);
      if (current.digest !== chosen.digest) {
        throw new DataLossError(
          `${this.#name}: manifest ${chosen.digest} from ${current.host} has digest ${current.digest}`,
        );
      }
      parsed = parseManifest(current.bytes, current.contentType, this.#where(current.host));
    }
    const manifest = parsed.manifest;
    const configBytes = await this.#smallBlob(manifest.config, signal);
    const file = parseImageConfig(configBytes, `${this.#name}: config ${manifest.config.digest}`);
    if (file.diffIds.length !== manifest.layers.length) {
      throw new DataLossError(
        `${this.#name}: the manifest has ${manifest.layers.length} layers, its config ${file.diffIds.length}`,
      );
    }
    if (file.os !== "" && file.os !== this.#options.platform.os) {
      throw new FailedPreconditionError(`${this.#name}: the image is for ${file.os}, not linux`);
    }
    return {
      digest: top.digest,
      manifestDigest: current.digest,
      manifest,
      config: { descriptor: manifest.config, bytes: configBytes, file },
      host: top.host,
    };
  }

  /** A blob's data as it arrives; the caller checks it against the descriptor. */
  async blob(descriptor: Descriptor, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const { response, host } = await this.#get(`blobs/${descriptor.digest}`, "pull", {}, signal);
    return this.#body(response, host, signal);
  }

  async #manifest(reference: string, capability: Capability, signal: AbortSignal) {
    const { response, host } = await this.#get(
      `manifests/${reference}`,
      capability,
      { accept: manifestAccept },
      signal,
    );
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (declared > maxManifestBytes) {
      await response.body?.cancel();
      throw new DataLossError(
        `${this.#where(host)}: manifest is larger than ${maxManifestBytes} bytes`,
      );
    }
    const bytes = await this.#readAll(response, host, maxManifestBytes, "manifest", signal);
    const digest = sha256Digest(bytes);
    const claimed = response.headers.get("docker-content-digest");
    if (claimed !== null && /^sha256:/.test(claimed) && claimed !== digest) {
      throw new DataLossError(
        `${this.#where(host)}: the manifest's digest is ${digest}, the registry says ${claimed}`,
      );
    }
    return {
      bytes,
      digest,
      host,
      contentType: response.headers.get("content-type") ?? undefined,
    };
  }

  async #smallBlob(descriptor: Descriptor, signal: AbortSignal): Promise<Uint8Array> {
    if (descriptor.size > maxConfigBytes) {
      throw new DataLossError(`${this.#name}: config of ${descriptor.size} bytes is too large`);
    }
    const { response, host } = await this.#get(`blobs/${descriptor.digest}`, "pull", {}, signal);
    const bytes = await this.#readAll(response, host, descriptor.size, "config", signal);
    if (bytes.length !== descriptor.size || sha256Digest(bytes) !== descriptor.digest) {
      throw new DataLossError(
        `${this.#where(host)}: config blob does not match its digest ${descriptor.digest}`,
      );
    }
    return bytes;
  }

  /**
   * A successful answer for `path` from the first endpoint that gives one: a mirror that
   * fails or lacks the content hands over to the next endpoint, the server's errors stand.
   */
  async #get(
    path: string,
    capability: Capability,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<{ response: Response; host: string }> {
    const endpoints = this.#options.hosts.endpoints(this.reference.domain)
      .filter((e) => e.capabilities.has(capability));
    let lastError: unknown;
    for (const endpoint of endpoints) {
      try {
        const response = await this.#authorized(endpoint, path, headers, signal);
        if (response.ok) return { response, host: endpoint.host };
        throw await this.#statusError(response, endpoint.host, path);
      } catch (error) {
        if (signal.aborted || endpoint.mirrorOf === undefined) throw error;
        this.#options.log.info("registry mirror failed, trying the next", {
          host: endpoint.host,
          error: error instanceof Error ? error.message : String(error),
        });
        lastError = error;
      }
    }
    throw lastError ??
      new UnavailableError(`${this.#name}: no registry endpoint can ${capability}`);
  }

  /** One request, answering the registry's authentication challenge once. */
  async #authorized(
    endpoint: Endpoint,
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    for (let round = 0;; round++) {
      // A loopback registry found to speak plain HTTP is asked that way from then on.
      const root = this.#options.hosts.isPlain(this.reference.domain) && endpoint.httpFallback
        ? endpoint.root.replace(/^https:/, "http:")
        : endpoint.root;
      const url = new URL(`${root}/${this.reference.path}/${path}`);
      if (endpoint.mirrorOf !== undefined) url.searchParams.set("ns", endpoint.mirrorOf);
      const authorization = this.#authorizer.header(endpoint.host, this.#scope);
      const response = await this.#send(endpoint, url, {
        headers: { ...headers, ...(authorization ? { authorization } : {}) },
      }, signal);
      if (response.status !== 401) return response;
      const challenges = parseChallenges(response.headers.get("www-authenticate"));
      await response.body?.cancel();
      const retry = round === 0 && await this.#authorizer.answer(
        endpoint.host,
        challenges,
        this.#scope,
        (tokenUrl, init) => this.#send(endpoint, tokenUrl, init, signal),
        signal,
      );
      if (retry) continue;
      throw new UnauthenticatedError(
        this.#authorizer.hasCredentials
          ? `${this.#where(endpoint.host)}: the registry refused the credentials`
          : `${this.#where(endpoint.host)}: the registry requires credentials`,
      );
    }
  }

  /**
   * Sends a request within the request timeout, following redirects (without credentials
   * when they lead elsewhere), and over plain HTTP when a loopback registry lacks TLS.
   */
  async #send(
    endpoint: Endpoint,
    url: URL,
    init: RequestInit,
    signal: AbortSignal,
  ): Promise<Response> {
    let target = url;
    let headers = new Headers(init.headers);
    for (let hop = 0; hop <= maxRedirects; hop++) {
      const response = await this.#fetch(endpoint, target, { ...init, headers }, signal);
      if (![301, 302, 303, 307, 308].includes(response.status)) return response;
      const location = response.headers.get("location");
      await response.body?.cancel();
      if (location === null) {
        throw new UnavailableError(`${this.#where(target.host)}: redirect without a location`);
      }
      const next = new URL(location, target);
      if (next.origin !== target.origin) {
        headers = new Headers(headers);
        headers.delete("authorization");
      }
      target = next;
    }
    throw new UnavailableError(`${this.#where(url.host)}: more than ${maxRedirects} redirects`);
  }

  async #fetch(
    endpoint: Endpoint,
    url: URL,
    init: RequestInit,
    signal: AbortSignal,
  ): Promise<Response> {
    try {
      return await this.#fetchOnce(endpoint, url, init, signal);
    } catch (error) {
      if (!endpoint.httpFallback || url.protocol !== "https:" || signal.aborted) throw error;
      // Only a server that answered the TLS handshake with something else (plain HTTP) is
      // asked again over HTTP: a certificate that is not trusted stays an error.
      if (!(error instanceof UnavailableError) || !notTls.test(error.message)) throw error;
      const plain = new URL(url.href.replace(/^https:/, "http:"));
      const response = await this.#fetchOnce(endpoint, plain, init, signal);
      this.#options.hosts.rememberPlain(this.reference.domain);
      this.#options.log.info("loopback registry speaks plain HTTP", { host: url.host });
      return response;
    }
  }

  async #fetchOnce(
    endpoint: Endpoint,
    url: URL,
    init: RequestInit,
    signal: AbortSignal,
  ): Promise<Response> {
    const controller = new AbortController();
    const timeoutMs = this.#options.requestTimeoutMs;
    const timer = setTimeout(
      () =>
        controller.abort(
          new DeadlineExceededError(
            `${this.#where(url.host)}: no answer within ${timeoutMs / 1000} s`,
          ),
        ),
      timeoutMs,
    );
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      return await fetch(url, {
        ...init,
        redirect: "manual",
        signal: controller.signal,
        ...(endpoint.client === undefined ? {} : { client: endpoint.client }),
      } as RequestInit);
    } catch (error) {
      throw this.#transportError(error, url.host, controller.signal);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** A body's chunks; a body that sends nothing for the stall timeout fails. */
  async *#body(
    response: Response,
    host: string,
    signal: AbortSignal,
  ): AsyncGenerator<Uint8Array> {
    const body = response.body;
    if (body === null) return;
    const reader = body.getReader();
    const stallMs = this.#options.stallTimeoutMs;
    const cancel = (reason: unknown) => void reader.cancel(reason).catch(() => {});
    const onAbort = () => cancel(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    let failure: unknown;
    // One watchdog for the transfer, not a timer per chunk: it looks at when data last came.
    let lastData = performance.now();
    let watchdog: ReturnType<typeof setTimeout>;
    const watch = () => {
      const quiet = performance.now() - lastData;
      if (quiet < stallMs) {
        watchdog = setTimeout(watch, stallMs - quiet);
        return;
      }
      failure = new DeadlineExceededError(
        `${this.#where(host)}: the transfer stalled for ${Math.round(stallMs / 1000)} s`,
      );
      cancel(failure);
    };
    watchdog = setTimeout(watch, stallMs);
    try {
      for (;;) {
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await reader.read();
        } catch (error) {
          const why = failure ?? (signal.aborted ? signal.reason : error);
          throw this.#transportError(why, host, signal);
        }
        if (failure !== undefined) throw failure;
        if (signal.aborted) throw this.#transportError(signal.reason, host, signal);
        if (next.done) return;
        lastData = performance.now();
        yield next.value;
      }
    } finally {
      clearTimeout(watchdog);
      signal.removeEventListener("abort", onAbort);
      cancel(undefined);
    }
  }

  async #readAll(
    response: Response,
    host: string,
    limit: number,
    what: string,
    signal: AbortSignal,
  ): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let length = 0;
    for await (const chunk of this.#body(response, host, signal)) {
      length += chunk.length;
      if (length > limit) {
        throw new DataLossError(`${this.#where(host)}: ${what} is larger than ${limit} bytes`);
      }
      chunks.push(chunk);
    }
    const out = new Uint8Array(length);
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** A typed error for an answer that is not success. */
  async #statusError(response: Response, host: string, path: string): Promise<RuntimeError> {
    const detail = await this.#registryMessage(response);
    const where = this.#where(host);
    const what = path.startsWith("manifests/") ? "manifest" : "blob";
    const suffix = detail === "" ? "" : `: ${detail}`;
    switch (response.status) {
      case 401:
        return new UnauthenticatedError(`${where}: the registry requires credentials${suffix}`);
      case 403:
        return new PermissionDeniedError(`${where}: access denied${suffix}`);
      case 404:
        return new NotFoundError(
          `${where}: ${what} ${path.slice(path.indexOf("/") + 1)} not found${suffix}`,
        );
      case 429:
        return new UnavailableError(`${where}: rate limited by the registry${suffix}`);
      default:
        return new UnavailableError(`${where}: HTTP ${response.status}${suffix}`);
    }
  }

  /** `CODE: message` of a registry's error document, short, printable and without secrets. */
  async #registryMessage(response: Response): Promise<string> {
    let text = "";
    try {
      const reader = response.body?.getReader();
      if (reader !== undefined) {
        let bytes = new Uint8Array(0);
        while (bytes.length < 64 * 1024) {
          const { value, done } = await reader.read();
          if (done) break;
          const joined = new Uint8Array(bytes.length + value.length);
          joined.set(bytes);
          joined.set(value, bytes.length);
          bytes = joined;
        }
        await reader.cancel().catch(() => {});
        text = new TextDecoder().decode(bytes);
      }
    } catch {
      return "";
    }
    let message = "";
    try {
      const first = JSON.parse(text)?.errors?.[0];
      if (first !== undefined) message = [first.code, first.message].filter(Boolean).join(": ");
    } catch {
      // not the registry's JSON: say nothing of it
    }
    return this.#scrub(message);
  }

  #scrub(text: string): string {
    let out = text.replace(/[^\x20-\x7e]/g, "?").slice(0, maxQuoted);
    for (const secret of this.#secrets) out = out.replaceAll(secret, "<redacted>");
    return out;
  }

  /** An exception from fetch or a body read as one of ours, naming the host. */
  #transportError(error: unknown, host: string, signal: AbortSignal): unknown {
    const reason = signal.aborted ? signal.reason : error;
    if (reason instanceof RuntimeError) {
      if (reason instanceof DeadlineExceededError && !reason.message.includes(host)) {
        return new DeadlineExceededError(
          `${this.#where(host)}: no answer before the deadline`,
          { cause: reason },
        );
      }
      return reason;
    }
    if (signal.aborted) return reason;
    // fetch says "fetch failed"; what failed is in its cause.
    const cause = error instanceof Error && error.cause instanceof Error
      ? `: ${error.cause.message}`
      : "";
    const message = `${error instanceof Error ? error.message : String(error)}${cause}`;
    return new UnavailableError(
      `${this.#where(host)}: cannot reach the registry: ${this.#scrub(message)}`,
    );
  }

  #where(host: string): string {
    return `pulling ${this.#name} from ${host}`;
  }
}
