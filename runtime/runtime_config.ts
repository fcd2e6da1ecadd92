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
 *   "images": { "pull": "pve-cri" },
 *   "lxc": { "lxcpath": "/var/lib/lxc", "pveConfigDir": "/etc/pve/lxc", "vmids": [100, 999999] },
 *   "rootfs": { "sizeGiB": 4 },
 *   "cni": { "confDir": "/etc/cni/net.d", "binDirs": ["/opt/cni/bin", "/usr/lib/cni"],
 *            "gcIntervalSeconds": 600 },
 *   "hooks": { "dirs": ["/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d"] },
 *   "reconcile": { "intervalSeconds": 30, "orphanGraceSeconds": 300 },
 *   "cri": { "maxConnections": 128, "maxConcurrentStreams": 1000, "maxResetsPerSecond": 200,
 *            "maxControlFramesPerSecond": 5000, "maxContinuationFrames": 32,
 *            "requestTimeoutSeconds": 60, "idleTimeoutSeconds": 300 }
 * }
 * ```
 * The Proxmox keys are needed for `--backend proxmox` only; see adapters/proxmox/config.ts
 * and adapters/registry/hosts.ts for each part.
 */
import { InvalidArgumentError } from "../lib/errors.ts";
import { type CriLimits, DEFAULT_CRI_LIMITS } from "../adapters/cri/limits.ts";
import { parseProxmoxConfig, type ProxmoxConfig } from "../adapters/proxmox/mod.ts";
import { parseRegistrySettings, type RegistrySettings } from "../adapters/registry/mod.ts";
import { defaultCniBinDirs, defaultCniConfDir } from "../adapters/cni/cni_network.ts";
import { defaultHooksDirs } from "../adapters/hooks/hooks_dirs.ts";

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
  /**
   * Where the node's LXC tools find CTs and PVE keeps their configs (a real node's defaults;
   * the embedded simulator has its own), and the VMID range (datacenter.cfg `next-id`) the
   * embedded simulator hands out.
   */
  lxc: { lxcpath: string; pveConfigDir: string; vmids: [number, number] | undefined };
  /** A new CT's root disk size. */
  rootfs: { sizeGiB: number };
  /** The pod network's CNI config dir and plugin dirs (flags override them). */
  cni: { confDir: string; binDirs: string[]; gcIntervalSeconds: number };
  /** hooks.d directories, in order (a later one masks a file of the same name). */
  hooks: { dirs: string[] };
  /**
   * How often the log is reconciled with Proxmox and the node (0: at startup only), and how
   * long a CT of pve-cri's that no stream knows is left before it is destroyed.
   */
  reconcile: { intervalSeconds: number; orphanGraceSeconds: number };
  /** What CRI clients may do before they are cut off (adapters/cri/grpc_server.ts). */
  cri: CriLimits;
}

export const defaultRuntimeConfig: RuntimeConfig = {
  proxmox: undefined,
  registries: {},
  images: { pull: "pve-cri" },
  lxc: { lxcpath: "/var/lib/lxc", pveConfigDir: "/etc/pve/lxc", vmids: undefined },
  rootfs: { sizeGiB: 1 },
  cni: { confDir: defaultCniConfDir, binDirs: defaultCniBinDirs, gcIntervalSeconds: 600 },
  hooks: { dirs: defaultHooksDirs },
  reconcile: { intervalSeconds: 30, orphanGraceSeconds: 300 },
  cri: DEFAULT_CRI_LIMITS,
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
  const lxc = (c.lxc ?? {}) as Record<string, unknown>;
  const path = (key: string, fallback: string): string => {
    const value = lxc[key] ?? fallback;
    if (typeof value !== "string" || !value.startsWith("/")) {
      throw new InvalidArgumentError(`${source}: lxc.${key} must be an absolute path`);
    }
    return value;
  };
  let vmids: [number, number] | undefined;
  if (lxc.vmids !== undefined) {
    const [lower, upper] = Array.isArray(lxc.vmids) ? lxc.vmids : [];
    if (!Number.isInteger(lower) || !Number.isInteger(upper) || lower < 100 || upper <= lower) {
      throw new InvalidArgumentError(
        `${source}: lxc.vmids must be [lower, upper], 100 ≤ lower < upper`,
      );
    }
    vmids = [lower, upper];
  }
  const sizeGiB = ((c.rootfs ?? {}) as Record<string, unknown>).sizeGiB ?? 1;
  if (typeof sizeGiB !== "number" || !(sizeGiB > 0)) {
    throw new InvalidArgumentError(`${source}: rootfs.sizeGiB must be a positive number`);
  }
  const cni = (c.cni ?? {}) as Record<string, unknown>;
  const confDir = cni.confDir ?? defaultCniConfDir;
  if (typeof confDir !== "string" || !confDir.startsWith("/")) {
    throw new InvalidArgumentError(`${source}: cni.confDir must be an absolute path`);
  }
  const binDirs = cni.binDirs ?? defaultCniBinDirs;
  if (
    !Array.isArray(binDirs) || binDirs.length === 0 ||
    binDirs.some((d) => typeof d !== "string" || !d.startsWith("/"))
  ) {
    throw new InvalidArgumentError(`${source}: cni.binDirs must be a list of absolute paths`);
  }
  const gcIntervalSeconds = cni.gcIntervalSeconds ?? 600;
  if (typeof gcIntervalSeconds !== "number" || !(gcIntervalSeconds >= 1)) {
    throw new InvalidArgumentError(`${source}: cni.gcIntervalSeconds must be at least 1`);
  }
  const hooksDirs = ((c.hooks ?? {}) as Record<string, unknown>).dirs ?? defaultHooksDirs;
  if (
    !Array.isArray(hooksDirs) ||
    hooksDirs.some((d) => typeof d !== "string" || !d.startsWith("/"))
  ) {
    throw new InvalidArgumentError(`${source}: hooks.dirs must be a list of absolute paths`);
  }
  const reconcile = (c.reconcile ?? {}) as Record<string, unknown>;
  const seconds = (key: string, fallback: number): number => {
    const value = reconcile[key] ?? fallback;
    if (typeof value !== "number" || !(value >= 0)) {
      throw new InvalidArgumentError(`${source}: reconcile.${key} must be a number ≥ 0`);
    }
    return value;
  };
  return {
    proxmox: c.url === undefined ? undefined : parseProxmoxConfig(text, source),
    registries: parseRegistrySettings(c.registries, source),
    images: { pull },
    lxc: {
      lxcpath: path("lxcpath", defaultRuntimeConfig.lxc.lxcpath),
      pveConfigDir: path("pveConfigDir", defaultRuntimeConfig.lxc.pveConfigDir),
      vmids,
    },
    rootfs: { sizeGiB },
    cni: { confDir, binDirs: binDirs as string[], gcIntervalSeconds },
    hooks: { dirs: hooksDirs as string[] },
    reconcile: {
      intervalSeconds: seconds("intervalSeconds", 30),
      orphanGraceSeconds: seconds("orphanGraceSeconds", 300),
    },
    cri: parseCriLimits(c.cri, source),
  };
}

function parseCriLimits(value: unknown, source: string): CriLimits {
  if (value === undefined) return DEFAULT_CRI_LIMITS;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidArgumentError(`${source}: cri must be an object`);
  }
  const given = value as Record<string, unknown>;
  const count = (key: string, fallback: number): number => {
    const n = given[key] ?? fallback;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${source}: cri.${key} must be a whole number ≥ 1`);
    }
    return n;
  };
  const known = [
    "maxConnections",
    "maxConcurrentStreams",
    "maxResetsPerSecond",
    "maxControlFramesPerSecond",
    "maxContinuationFrames",
    "requestTimeoutSeconds",
    "idleTimeoutSeconds",
  ];
  const unknown = Object.keys(given).find((key) => !known.includes(key));
  if (unknown !== undefined) {
    throw new InvalidArgumentError(
      `${source}: cri.${unknown} is not a setting (${known.join(", ")})`,
    );
  }
  const d = DEFAULT_CRI_LIMITS;
  return {
    maxConnections: count("maxConnections", d.maxConnections),
    maxConcurrentStreams: count("maxConcurrentStreams", d.maxConcurrentStreams),
    maxResetsPerSecond: count("maxResetsPerSecond", d.maxResetsPerSecond),
    maxControlFramesPerSecond: count("maxControlFramesPerSecond", d.maxControlFramesPerSecond),
    maxContinuationFrames: count("maxContinuationFrames", d.maxContinuationFrames),
    requestTimeoutMs: count("requestTimeoutSeconds", d.requestTimeoutMs / 1000) * 1000,
    idleTimeoutMs: count("idleTimeoutSeconds", d.idleTimeoutMs / 1000) * 1000,
  };
}

export function loadRuntimeConfig(path: string): RuntimeConfig {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw new InvalidArgumentError(
      `--config "${path}" cannot be read: ${(error as Error).message}`,
    );
  }
  return parseRuntimeConfig(text, `--config "${path}"`);
}
