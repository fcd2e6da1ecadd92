/**
 * Registry authentication, as the distribution token spec and docker/containerd do it: a
 * request goes out anonymously (or with a token already held); a 401's challenge says how to
 * authenticate: `Basic` (credentials on every request) or `Bearer` (a token from the realm,
 * fetched with the credentials, an identity token, or none). Tokens are kept for their
 * lifetime per realm, service, scope and credentials. Secrets live only in memory here: they
 * are never logged, stored, or put in an error text.
 */
import { UnauthenticatedError } from "../../lib/errors.ts";
import { createHash } from "node:crypto";
import type { Challenge } from "./challenge.ts";

/** What the CRI's AuthConfig (or `deno task images pull --creds`) gives for one pull. */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** `base64(username:password)`, as docker's config.json stores it. */
  auth?: string;
  /** An OAuth2 refresh token, exchanged at the realm for access tokens. */
  identityToken?: string;
  /** A bearer token to send as it is. */
  registryToken?: string;
}

interface HeldToken {
  token: string;
  /** ms since the epoch; reused until shortly before. */
  expiresAt: number;
}

/** Tokens are reused until this long before they expire. */
const expiryMarginMs = 10_000;
/** The distribution spec's default when a token response gives no lifetime. */
const defaultLifetimeS = 60;

/**
 * What authentication learned, across pulls: access tokens by realm, service, scope and
 * credentials; and per host and credentials, the challenge last answered, so a later pull
 * sends its token (or basic credentials) with its first request.
 */
export class TokenCache {
  readonly #tokens = new Map<string, HeldToken>();
  readonly #challenges = new Map<string, Challenge>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  get(key: string): string | undefined {
    const held = this.#tokens.get(key);
    if (held === undefined) return undefined;
    if (held.expiresAt - expiryMarginMs <= this.#now()) {
      this.#tokens.delete(key);
      return undefined;
    }
    return held.token;
  }

  set(key: string, token: string, lifetimeS: number, issuedAt?: number): void {
    const from = issuedAt !== undefined && issuedAt <= this.#now() ? issuedAt : this.#now();
    this.#tokens.set(key, { token, expiresAt: from + lifetimeS * 1000 });
    if (this.#tokens.size > 1000) this.#prune();
  }

  challenge(host: string, credentials: string): Challenge | undefined {
    return this.#challenges.get(`${host}\0${credentials}`);
  }

  rememberChallenge(host: string, credentials: string, challenge: Challenge): void {
    this.#challenges.set(`${host}\0${credentials}`, challenge);
    if (this.#challenges.size > 1000) {
      this.#challenges.delete(this.#challenges.keys().next().value!);
    }
  }

  #prune(): void {
    const now = this.#now();
    for (const [key, held] of this.#tokens) if (held.expiresAt <= now) this.#tokens.delete(key);
  }
}

/** username:password, from whichever form the credentials came in. */
export function basicPair(
  credentials: RegistryCredentials | undefined,
): { username: string; password: string } | undefined {
  if (credentials === undefined) return undefined;
  if (credentials.username !== undefined && credentials.username !== "") {
    return { username: credentials.username, password: credentials.password ?? "" };
  }
  if (credentials.auth !== undefined && credentials.auth !== "") {
    let decoded: string;
    try {
      decoded = atob(credentials.auth);
    } catch {
      throw new UnauthenticatedError("auth.auth is not base64 of username:password");
    }
    const colon = decoded.indexOf(":");
    if (colon <= 0) throw new UnauthenticatedError("auth.auth is not base64 of username:password");
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** Every secret the credentials hold: what an error text must never contain. */
export function secretsOf(credentials: RegistryCredentials | undefined): string[] {
  if (credentials === undefined) return [];
  const pair = (() => {
    try {
      return basicPair(credentials);
    } catch {
      return undefined;
    }
  })();
  return [
    credentials.password,
    credentials.auth,
    credentials.identityToken,
    credentials.registryToken,
    pair?.password,
  ].filter((s): s is string => s !== undefined && s.length >= 4);
}

export interface TokenRequest {
  realm: string;
  service: string | undefined;
  scope: string;
}

/** Fetches a token from a realm; `fetch` is the endpoint's HTTP (its CA, its deadline). */
export type TokenFetcher = (url: URL, init: RequestInit) => Promise<Response>;

/**
 * How one pull authenticates to one registry host: what header a request carries, and what
 * to do when a 401 says otherwise.
 */
export class Authorizer {
  readonly #credentials: RegistryCredentials | undefined;
  readonly #cache: TokenCache;
  readonly #credentialKey: string;

  constructor(credentials: RegistryCredentials | undefined, cache: TokenCache) {
    this.#credentials = credentials;
    this.#cache = cache;
    this.#credentialKey = credentialKey(credentials);
  }

  get hasCredentials(): boolean {
    const c = this.#credentials;
    return c !== undefined &&
      [c.username, c.auth, c.identityToken, c.registryToken].some((s) =>
        s !== undefined && s !== ""
      );
  }

  /** The Authorization header for a request to `host` needing `scope`, if one is known. */
  header(host: string, scope: string): string | undefined {
    const challenge = this.#cache.challenge(host, this.#credentialKey);
    if (challenge === undefined) {
      const token = this.#credentials?.registryToken;
      return token ? `Bearer ${token}` : undefined;
    }
    if (challenge.scheme === "basic") return this.#basicHeader();
    const token = this.#cache.get(this.#tokenKey(challenge, scope));
    return token === undefined ? undefined : `Bearer ${token}`;
  }

  /**
   * Answers a 401: fetches a token or switches to basic credentials. Returns false when
   * nothing new can be tried (the request then fails as unauthenticated).
   */
  async answer(
    host: string,
    challenges: Challenge[],
    scope: string,
    fetchToken: TokenFetcher,
    signal: AbortSignal,
  ): Promise<boolean> {
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    const known = this.#cache.challenge(host, this.#credentialKey);
    if (bearer !== undefined && bearer.params.realm !== undefined) {
      // A token refused (expired early, revoked) is replaced once; the caller retries once.
      const wanted = bearer.params.scope ?? scope;
      const key = this.#tokenKey(bearer, wanted);
      const token = await this.#fetchToken(
        { realm: bearer.params.realm, service: bearer.params.service, scope: wanted },
        fetchToken,
        signal,
      );
      this.#cache.set(key, token.token, token.lifetimeS, token.issuedAt);
      this.#cache.rememberChallenge(host, this.#credentialKey, {
        scheme: "bearer",
        params: { ...bearer.params, scope: wanted },
      });
      return true;
    }
    if (basic !== undefined) {
      if (known?.scheme === "basic" || basicPair(this.#credentials) === undefined) return false;
      this.#cache.rememberChallenge(host, this.#credentialKey, basic);
      return true;
    }
    return false;
  }

  #basicHeader(): string | undefined {
    const pair = basicPair(this.#credentials);
    return pair === undefined ? undefined : `Basic ${btoa(`${pair.username}:${pair.password}`)}`;
  }

  #tokenKey(challenge: Challenge, scope: string): string {
    return [challenge.params.realm, challenge.params.service ?? "", scope, this.#credentialKey]
      .join("\0");
  }

  async #fetchToken(
    request: TokenRequest,
    fetchToken: TokenFetcher,
    signal: AbortSignal,
  ): Promise<{ token: string; lifetimeS: number; issuedAt?: number }> {
    const realm = new URL(request.realm);
    const identityToken = this.#credentials?.identityToken;
    let response: Response;
    if (identityToken) {
      // An identity token is an OAuth2 refresh token (docker login's, ACR's, …).
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: identityToken,
        client_id: "pve-cri",
        scope: request.scope,
        ...(request.service === undefined ? {} : { service: request.service }),
      });
      response = await fetchToken(realm, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
        signal,
      });
    } else {
      if (request.service !== undefined) realm.searchParams.set("service", request.service);
      realm.searchParams.set("scope", request.scope);
      const basic = this.#basicHeader();
      response = await fetchToken(realm, {
        headers: basic === undefined ? {} : { authorization: basic },
        signal,
      });
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new UnauthenticatedError(
        `The token service at ${realm.host} refused ${
          this.hasCredentials ? "the credentials" : "an anonymous token"
        } for ${request.scope} (HTTP ${response.status})`,
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new UnauthenticatedError(
        `The token service at ${realm.host} answered HTTP ${response.status} for ${request.scope}`,
      );
    }
    let body: Record<string, unknown>;
    try {
      body = await response.json();
    } catch {
      throw new UnauthenticatedError(`The token service at ${realm.host} answered with no JSON`);
    }
    const token = typeof body.token === "string" && body.token !== ""
      ? body.token
      : typeof body.access_token === "string"
      ? body.access_token
      : undefined;
    if (token === undefined || token === "") {
      throw new UnauthenticatedError(`The token service at ${realm.host} sent no token`);
    }
    const lifetime = typeof body.expires_in === "number" && body.expires_in > 0
      ? Math.max(body.expires_in, defaultLifetimeS)
      : defaultLifetimeS;
    const issued = typeof body.issued_at === "string" ? Date.parse(body.issued_at) : NaN;
    return {
      token,
      lifetimeS: lifetime,
      ...(Number.isFinite(issued) ? { issuedAt: issued } : {}),
    };
  }
}

/** A key standing for the credentials without holding them. */
function credentialKey(credentials: RegistryCredentials | undefined): string {
  if (credentials === undefined) return "anonymous";
  return createHash("sha256").update(JSON.stringify([
    credentials.username ?? "",
    credentials.password ?? "",
    credentials.auth ?? "",
    credentials.identityToken ?? "",
    credentials.registryToken ?? "",
  ])).digest("hex");
}
