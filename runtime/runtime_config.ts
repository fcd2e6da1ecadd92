/**
 * The config file (`--config FILE`, JSON, mode 0600 when it holds a credential): the Proxmox
 * connection for `--backend proxmox`, per-registry settings, and how images are pulled.
 *
 * ```json
 * {
 *   "url": "https://pve1.example:8006", "node": "pve1", "auth": { … }, "tls": { … },
 *   "storage": { "rootfs": "local-lvm", "templates": "local" }, "bridge": "vmbr0",
 *   "registries": {
 *     "docker.io": { "mirrors": [{ "url": "https://mirror.internal:5000" }] },
 *     "registry.internal:5000": { "ca": "/etc/pve-cri/registry-ca.pem" },
 *     "build.lab:5000": { "insecure": true }
 *   },
 *   "images": { "pull": "pve-cri" }
 * }
 * ```
 * The Proxmox keys are needed for `--backend proxmox` only; see adapters/proxmox/config.ts
 * and adapters/registry/hosts.ts for each part.
 */
import { InvalidArgumentError } from "../lib/errors.ts";
import { parseProxmoxConfig, type ProxmoxConfig } from "../adapters/proxmox/mod.ts";
import { parseRegistrySettings, type RegistrySettings } from "../adapters/registry/mod.ts";

export type PullMode = "pve-cri" | "proxmox";

export interface RuntimeConfig {
  /** Set when the file names a Proxmox node (`url`). */
  proxmox: ProxmoxConfig | undefined;
  registries: Record<string, RegistrySettings>;
  images: {
    /**
     * `pve-cri` (default): pve-cri pulls into its content store and uploads the archive.
     * `proxmox`: anonymous tag references are pulled by PVE's own `oci-registry-pull`.
     */
    pull: PullMode;
  };
}

export const defaultRuntimeConfig: RuntimeConfig = {
  proxmox: undefined,
  registries: {},
  images: { pull: "pve-cri" },
};

export function parseRuntimeConfig(text: string, source: string): RuntimeConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`${source} is not JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError(`${source}: expected an object`);
  }
  const c = raw as Record<string, unknown>;
  const images = (c.images ?? {}) as Record<string, unknown>;
  const pull = images.pull ?? "pve-cri";
  if (pull !== "pve-cri" && pull !== "proxmox") {
    throw new InvalidArgumentError(`${source}: images.pull must be "pve-cri" or "proxmox"`);
  }
  return {
    proxmox: c.url === undefined ? undefined : parseProxmoxConfig(text, source),
    registries: parseRegistrySettings(c.registries, source),
    images: { pull },
  };
}

export function loadRuntimeConfig(path: string): RuntimeConfig {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw new InvalidArgumentError(`Config "${path}" cannot be read: ${(error as Error).message}`);
  }
  return parseRuntimeConfig(text, `Config "${path}"`);
}
