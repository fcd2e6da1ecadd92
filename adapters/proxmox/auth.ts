/**
 * Credentials for the PVE API. An API token is a static header. A ticket comes from
 * `POST /access/ticket`, travels as the `PVEAuthCookie` cookie with a `CSRFPreventionToken`
 * header on every write, and is renewed (by posting it as the password) well before its two
 * hours run out. Every secret is listed so logs and errors can be scrubbed of it.
 */
import { InvalidArgumentError } from "../../lib/errors.ts";

export type AuthConfig =
  | {
    /** `user@realm!tokenid`. */
    tokenId: string;
    secret: string;
  }
  | {
    /** `user@realm` (or `user` with `realm`). */
    username: string;
    password: string;
    realm?: string;
  };

export interface TicketGrant {
  username: string;
  ticket: string;
  CSRFPreventionToken: string;
}

/** Performs an unauthenticated `POST /access/ticket`. */
export type TicketLogin = (request: { username: string; password: string }) => Promise<TicketGrant>;

export interface Authenticator {
  /** The user as UPIDs and task lists show it (`user@realm!token` for tokens). */
  readonly userid: string;
  /** Whether root-only options (bind mounts, devices, most features) are allowed. */
  readonly isRootTicket: boolean;
  /** Every secret in use, to scrub from anything printed. */
  secrets(): string[];
  /** Headers for one request (logs in or renews the ticket when due). */
  headers(method: string): Promise<Record<string, string>>;
  /** After a 401: gets fresh credentials; false if there is nothing to refresh. */
  refresh(): Promise<boolean>;
}

/** PVE ticket lifetime is 2 h; renew after this much of it. */
const defaultRenewAfterMs = 90 * 60_000;

export class TokenAuthenticator implements Authenticator {
  readonly userid: string;
  readonly isRootTicket = false;
  readonly #header: string;
  readonly #secret: string;

  constructor(tokenId: string, secret: string) {
    if (!/^[^@!\s]+@[^@!\s]+![A-Za-z][A-Za-z0-9._-]*$/.test(tokenId)) {
      throw new InvalidArgumentError(`Invalid API token id "${tokenId}": expected user@realm!name`);
    }
    this.userid = tokenId;
    this.#secret = secret;
    this.#header = `PVEAPIToken=${tokenId}=${secret}`;
  }

  secrets(): string[] {
    return [this.#secret, this.#header];
  }

  headers(): Promise<Record<string, string>> {
    return Promise.resolve({ authorization: this.#header });
  }

  refresh(): Promise<boolean> {
    return Promise.resolve(false);
  }
}

export interface TicketAuthenticatorOptions {
  username: string;
  password: string;
  login: TicketLogin;
  now?: () => number;
  renewAfterMs?: number;
}

export class TicketAuthenticator implements Authenticator {
  readonly #options: TicketAuthenticatorOptions;
  readonly #now: () => number;
  #grant: TicketGrant | undefined;
  #obtainedAt = 0;
  #pending: Promise<TicketGrant> | undefined;

  constructor(options: TicketAuthenticatorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get userid(): string {
    return this.#grant?.username ?? this.#options.username;
  }

  get isRootTicket(): boolean {
    return this.userid === "root@pam";
  }

  secrets(): string[] {
    const grant = this.#grant;
    return [
      this.#options.password,
      ...(grant === undefined ? [] : [grant.ticket, grant.CSRFPreventionToken]),
    ];
  }

  async headers(method: string): Promise<Record<string, string>> {
    const grant = await this.#current();
    return {
      cookie: `PVEAuthCookie=${encodeURIComponent(grant.ticket)}`,
      ...(method === "GET" ? {} : { csrfpreventiontoken: grant.CSRFPreventionToken }),
    };
  }

  async refresh(): Promise<boolean> {
    this.#grant = undefined;
    await this.#current();
    return true;
  }

  #current(): Promise<TicketGrant> {
    const renewAfter = this.#options.renewAfterMs ?? defaultRenewAfterMs;
    if (this.#grant !== undefined && this.#now() - this.#obtainedAt < renewAfter) {
      return Promise.resolve(this.#grant);
    }
    // One login at a time, shared by the requests that wait for it.
    this.#pending ??= this.#obtain().finally(() => this.#pending = undefined);
    return this.#pending;
  }

  async #obtain(): Promise<TicketGrant> {
    const previous = this.#grant;
    const startedAt = this.#now();
    let grant: TicketGrant | undefined;
    if (previous !== undefined) {
      // Renewal: the still valid ticket stands in for the password.
      grant = await this.#options.login({ username: previous.username, password: previous.ticket })
        .catch(() => undefined);
    }
    grant ??= await this.#options.login({
      username: this.#options.username,
      password: this.#options.password,
    });
    this.#grant = grant;
    this.#obtainedAt = startedAt;
    return grant;
  }
}
