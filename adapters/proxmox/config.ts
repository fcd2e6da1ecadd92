/**
 * The Proxmox config file (JSON) that `deno task start --backend proxmox --config FILE`
 * reads and `deno task sim --config-out FILE` writes. It holds a credential: keep it 0600.
 *
 * ```json
 * {
 *   "url": "https://pve1.example:8006",
 *   "node": "pve1",
 *   "auth": { "tokenId": "root@pam!pve-cri", "secret": "…" },
 *   "tls": { "caFile": "/etc/pve/pve-root-ca.pem" },
 *   "storage": { "rootfs": "local-lvm", "templates": "local" },
 *   "bridge": "vmbr0"
 * }
 * ```
 * `auth` may instead be `{ "username": "root@pam", "password": "…" }` (ticket login; needed
 * for root-only options); `tls` may be `{ "fingerprint": "AA:BB:…" }` or, for a plain-HTTP
 * URL, `{ "insecure": true }`; without `tls` the system roots are trusted.
 */
import { InvalidArgumentError } from "../../lib/errors.ts";
import type { AuthConfig } from "./auth.ts";
import type { ProxmoxClientOptions } from "./client.ts";
import type { TlsOptions } from "./tls.ts";

export interface ProxmoxConfig {
  url: string;
  node: string;
  auth: AuthConfig;
  tls?: TlsOptions;
  storage: {
    /** Where CT root disks are allocated. */
    rootfs: string;
    /** A `vztmpl` storage for templates and OCI archives. */
    templates: string;
  };
  /** Bridge the CTs' `net0` attaches to. */
  bridge: string;
}

export function parseProxmoxConfig(text: string, source = "Proxmox config"): ProxmoxConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`${source} is not JSON: ${(error as Error).message}`);
  }
  const fail = (what: string) => new InvalidArgumentError(`${source}: ${what}`);
  if (typeof raw !== "object" || raw === null) throw fail("expected an object");
  const c = raw as Record<string, unknown>;
  if (typeof c.url !== "string" || !/^https?:\/\//.test(c.url)) {
    throw fail(`"url" must be an http(s) URL`);
  }
  if (typeof c.node !== "string" || c.node === "") throw fail(`"node" is required`);
  const auth = c.auth as Record<string, unknown> | undefined;
  let parsedAuth: AuthConfig;
  if (typeof auth?.tokenId === "string" && typeof auth.secret === "string") {
    parsedAuth = { tokenId: auth.tokenId, secret: auth.secret };
  } else if (typeof auth?.username === "string" && typeof auth.password === "string") {
    parsedAuth = { username: auth.username, password: auth.password };
  } else {
    throw fail(`"auth" needs "tokenId" and "secret", or "username" and "password"`);
  }
  const tls = (c.tls ?? {}) as Record<string, unknown>;
  const parsedTls: TlsOptions = {
    ...(typeof tls.caFile === "string" ? { caFile: tls.caFile } : {}),
    ...(typeof tls.fingerprint === "string" ? { fingerprint: tls.fingerprint } : {}),
    ...(tls.insecure === true ? { insecure: true } : {}),
  };
  const storage = (c.storage ?? {}) as Record<string, unknown>;
  return {
    url: c.url,
    node: c.node,
    auth: parsedAuth,
    tls: parsedTls,
    storage: {
      rootfs: typeof storage.rootfs === "string" ? storage.rootfs : "local-lvm",
      templates: typeof storage.templates === "string" ? storage.templates : "local",
    },
    bridge: typeof c.bridge === "string" ? c.bridge : "vmbr0",
  };
}

export function loadProxmoxConfig(path: string): ProxmoxConfig {
  return parseProxmoxConfig(Deno.readTextFileSync(path), `Proxmox config "${path}"`);
}

export function writeProxmoxConfig(path: string, config: ProxmoxConfig): void {
  Deno.writeTextFileSync(path, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
}

/** The client options a config file stands for. */
export function clientOptionsFromConfig(config: ProxmoxConfig): ProxmoxClientOptions {
  return {
    url: config.url,
    node: config.node,
    auth: config.auth,
    ...(config.tls === undefined ? {} : { tls: config.tls }),
  };
}
