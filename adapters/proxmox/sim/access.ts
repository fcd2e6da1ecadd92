/**
 * Authentication as pveproxy checks it: API tokens (`PVEAPIToken=user@realm!id=secret`),
 * tickets (`PVE:user@realm:HEXTIME::signature`, valid 2 h, renewable by posting the ticket as
 * the password) and CSRF tokens on every non-GET request made with a ticket.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { PveHttpError } from "./http_error.ts";

export interface SimUser {
  /** `user@realm`, e.g. `root@pam`. */
  userid: string;
  password: string;
}

export interface SimToken {
  /** `user@realm!tokenid`. */
  tokenid: string;
  secret: string;
}

/** Who a request runs as. */
export interface Caller {
  /** `user@realm`. */
  userid: string;
  /** The token name when authenticated by API token. */
  tokenid?: string;
  /** As UPIDs carry it: `user@realm!token` or `user@realm`. */
  upidUser: string;
  /** Root-only operations check exactly this (a root@pam token is not root). */
  isRootPam: boolean;
}

export interface TicketGrant {
  username: string;
  ticket: string;
  CSRFPreventionToken: string;
  cap: Record<string, Record<string, number>>;
}

export interface AccessOptions {
  users: readonly SimUser[];
  tokens: readonly SimToken[];
  /** Key that signs tickets and CSRF tokens; kept so tickets survive a restart. */
  key: Uint8Array;
  now: () => number;
}

/** Ticket lifetime (pve-access-control `$ticket_lifetime`). */
export const ticketLifetimeSeconds = 7200;

export class Access {
  readonly #options: AccessOptions;
  readonly #users = new Map<string, SimUser>();
  readonly #tokens = new Map<string, SimToken>();

  constructor(options: AccessOptions) {
    this.#options = options;
    for (const user of options.users) this.#users.set(user.userid, user);
    for (const token of options.tokens) this.#tokens.set(token.tokenid, token);
  }

  addUser(user: SimUser): void {
    this.#users.set(user.userid, user);
  }

  addToken(token: SimToken): void {
    this.#tokens.set(token.tokenid, token);
  }

  /** `POST /access/ticket`: a password, or a still valid ticket to renew. */
  login(params: { username: string; password: string; realm?: string }): TicketGrant {
    const userid = params.username.includes("@") || params.realm === undefined
      ? params.username
      : `${params.username}@${params.realm}`;
    const user = this.#users.get(userid);
    const renewed = this.#verifyTicket(params.password);
    const ok = user !== undefined &&
      (renewed === userid || safeEqual(user.password, params.password));
    if (!ok) throw new PveHttpError(401, "authentication failure");
    const time = this.#nowSeconds();
    return {
      username: userid,
      ticket: this.#signTicket(userid, time),
      CSRFPreventionToken: this.#csrfToken(userid, time),
      cap: { vms: { "VM.Allocate": 1 }, storage: { "Datastore.Allocate": 1 } },
    };
  }

  /** Authenticates one request; throws the 401 PVE would send. */
  authenticate(headers: Headers, method: string): Caller {
    const authorization = headers.get("authorization") ?? "";
    const token = /(?:^|\s)PVEAPIToken(?:=| )([^;]*)/.exec(authorization);
    if (token !== null) return this.#checkToken(decodeURIComponent(token[1]!.trim()));
    const ticket = cookie(headers.get("cookie") ?? "", "PVEAuthCookie") ??
      /(?:^|\s)PVEAuthCookie=([^;\s]*)/.exec(authorization)?.[1];
    if (ticket === undefined) throw new PveHttpError(401, "No ticket");
    const userid = this.#verifyTicket(decodeURIComponent(ticket));
    if (userid === undefined) throw new PveHttpError(401, "No ticket");
    if (method !== "GET" && !this.#verifyCsrf(userid, headers.get("csrfpreventiontoken") ?? "")) {
      throw new PveHttpError(401, "Permission denied - invalid csrf token");
    }
    return { userid, upidUser: userid, isRootPam: userid === "root@pam" };
  }

  #checkToken(value: string): Caller {
    const split = value.lastIndexOf("=");
    const tokenid = value.slice(0, split);
    const token = split > 0 ? this.#tokens.get(tokenid) : undefined;
    if (token === undefined || !safeEqual(token.secret, value.slice(split + 1))) {
      throw new PveHttpError(401, "Authentication failed!");
    }
    const [userid, name] = tokenid.split("!") as [string, string];
    return { userid, tokenid: name, upidUser: tokenid, isRootPam: false };
  }

  #signTicket(userid: string, time: number): string {
    const plain = `PVE:${userid}:${hexTime(time)}`;
    return `${plain}::${this.#mac(plain)}`;
  }

  /** The user of a valid ticket, or undefined. */
  #verifyTicket(ticket: string): string | undefined {
    const m = /^(PVE:([^:]+):([0-9A-F]{8}))::(.+)$/.exec(ticket);
    if (m === null || !safeEqual(this.#mac(m[1]!), m[4]!)) return undefined;
    const age = this.#nowSeconds() - parseInt(m[3]!, 16);
    return age >= -300 && age < ticketLifetimeSeconds ? m[2] : undefined;
  }

  #csrfToken(userid: string, time: number): string {
    return `${hexTime(time)}:${this.#mac(`${hexTime(time)}:${userid}`).slice(0, 43)}`;
  }

  #verifyCsrf(userid: string, token: string): boolean {
    const m = /^([0-9A-F]{8}):(.+)$/.exec(token);
    if (m === null) return false;
    const time = parseInt(m[1]!, 16);
    const age = this.#nowSeconds() - time;
    return age >= -300 && age < ticketLifetimeSeconds &&
      safeEqual(this.#csrfToken(userid, time), token);
  }

  #mac(text: string): string {
    return createHmac("sha256", this.#options.key).update(text).digest("base64");
  }

  #nowSeconds(): number {
    return Math.floor(this.#options.now() / 1000);
  }
}

/** A random secret in the shape of PVE's token secrets (a UUID). */
export function newTokenSecret(): string {
  return crypto.randomUUID();
}

export function newSigningKey(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

function hexTime(seconds: number): string {
  return seconds.toString(16).toUpperCase().padStart(8, "0");
}

function safeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(header: string, name: string): string | undefined {
  for (const part of header.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}
