/**
 * What the runtime needs from Proxmox VE, whether a real cluster or the simulator: CT
 * lifecycle, config, listings, storage content, OCI pulls and tasks. Asynchronous operations
 * return the task's UPID as soon as Proxmox accepted them (record it, then `waitForTask`).
 */

import type { StreamedBody } from "./transport.ts";

export type { StreamedBody };

/** A CT on a node; `node` defaults to the client's node. */
export interface CtRef {
  vmid: number;
  node?: string;
}

/** A scalar as the API takes it; booleans are sent as 1/0. */
export type PveScalar = string | number | boolean;

/** CT config keys the runtime sets (create and `PUT config`). */
export interface CtOptions {
  hostname?: string;
  /** MiB, ≥ 16. */
  memory?: number;
  /** MiB. */
  swap?: number;
  cores?: number;
  /** CPU time limit in cores (0 = unlimited). */
  cpulimit?: number;
  cpuunits?: number;
  /** `net0`, `net1`, … as property strings (`name=eth0,bridge=vmbr0,ip=dhcp`). */
  net?: readonly string[];
  /** `local-lvm:8` or `[volume=]vol,size=…`. */
  rootfs?: string;
  unprivileged?: boolean;
  /** `nesting=1,keyctl=1` (anything but nesting needs a root@pam ticket). */
  features?: string;
  tags?: readonly string[];
  description?: string;
  /** Init command line. */
  entrypoint?: string;
  /** `KEY=value` entries (sent NUL-separated). */
  env?: readonly string[];
  cmode?: "tty" | "console" | "shell";
  ostype?: string;
  /** Any other config key (`mp0`, `nameserver`, `onboot`, …), sent as given. */
  extra?: Readonly<Record<string, PveScalar>>;
}

export interface CreateCtParams extends CtOptions {
  vmid: number;
  node?: string;
  /** `storage:vztmpl/file` of the template or OCI archive. */
  ostemplate: string;
  /** Default storage for new volumes. */
  storage?: string;
  /** Start once created (in the same task). */
  start?: boolean;
  /** Root password inside the CT (a secret: never logged). */
  password?: string;
}

export interface UpdateCtConfigParams extends CtRef {
  set?: CtOptions;
  /** Keys to remove. */
  delete?: readonly string[];
  /** Refuse the change if the config changed since this digest was read. */
  digest?: string;
}

export interface PveVersion {
  version: string;
  release: string;
  repoid: string;
}

/** `GET …/config`: keys as Proxmox returns them, plus the digest. */
export interface CtConfig {
  digest: string;
  hostname?: string;
  memory?: number;
  swap?: number;
  cores?: number;
  /** Number-typed keys come back as text, e.g. `"0.5"`. */
  cpulimit?: string;
  cpuunits?: number;
  rootfs?: string;
  unprivileged?: number;
  features?: string;
  /** `;`-separated. */
  tags?: string;
  description?: string;
  entrypoint?: string;
  /** NUL-separated `KEY=value` entries. */
  env?: string;
  cmode?: string;
  ostype?: string;
  lock?: string;
  /** Raw `lxc.*` lines. */
  lxc?: [string, string][];
  [key: string]: unknown;
}

export interface CtStatus {
  vmid: number;
  status: "running" | "stopped";
  name?: string;
  lock?: string;
  tags?: string;
  /** Init pid while running. */
  pid?: number;
  uptime?: number;
  cpus?: number;
  maxmem?: number;
  mem?: number;
  [key: string]: unknown;
}

export type CtListEntry = CtStatus;

export interface ClusterResource {
  id: string;
  type: string;
  node?: string;
  vmid?: number;
  name?: string;
  status?: string;
  lock?: string;
  tags?: string;
  storage?: string;
  [key: string]: unknown;
}

export interface StorageVolume {
  volid: string;
  format: string;
  size: number;
  content?: string;
  ctime?: number;
  vmid?: number;
  [key: string]: unknown;
}

export interface TaskStatus {
  upid: string;
  node: string;
  type: string;
  id: string;
  user: string;
  tokenid?: string;
  status: "running" | "stopped";
  /** Only once stopped: `OK`, `WARNINGS: N`, or the error. */
  exitstatus?: string;
  starttime: number;
  pid: number;
  pstart: number;
}

export interface TaskLogLine {
  n: number;
  t: string;
}

export interface WaitOptions {
  /** Gives up (PveTimeoutError) after this long; the task goes on. Default 10 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ProxmoxApi {
  /** The node CT operations go to unless a call names another. */
  readonly node: string;
  version(): Promise<PveVersion>;
  /** A free vmid right now (no reservation: `createCtWithNextId` handles the race). */
  nextVmid(): Promise<number>;
  /** The cluster's range for new VMIDs (datacenter.cfg `next-id`; PVE's defaults if unset). */
  vmidRange(): Promise<{ lower: number; upper: number }>;
  createCt(params: CreateCtParams): Promise<string>;
  /** Allocates a vmid and creates; retries with a new vmid if another create took it. */
  createCtWithNextId(params: Omit<CreateCtParams, "vmid">): Promise<{ vmid: number; upid: string }>;
  startCt(ref: CtRef): Promise<string>;
  /** Hard stop. */
  stopCt(ref: CtRef & { overruleShutdown?: boolean }): Promise<string>;
  /** Clean shutdown; with `forceStop`, a hard stop after `timeout` seconds. */
  shutdownCt(ref: CtRef & { timeout?: number; forceStop?: boolean }): Promise<string>;
  destroyCt(ref: CtRef & { force?: boolean; purge?: boolean }): Promise<string>;
  ctStatus(ref: CtRef): Promise<CtStatus>;
  ctConfig(ref: CtRef): Promise<CtConfig>;
  updateCtConfig(params: UpdateCtConfigParams): Promise<void>;
  listCts(node?: string): Promise<CtListEntry[]>;
  clusterResources(type?: "vm" | "storage" | "node" | "sdn"): Promise<ClusterResource[]>;
  listStorageContent(
    params: { storage: string; content?: string; vmid?: number; node?: string },
  ): Promise<StorageVolume[]>;
  /**
   * Uploads a template or ISO; resolves to the UPID of the copy task. A `StreamedBody` is
   * sent as it is read (a large archive is never whole in memory).
   */
  uploadToStorage(params: {
    storage: string;
    filename: string;
    data: Uint8Array | StreamedBody;
    content?: "vztmpl" | "iso" | "import";
    node?: string;
  }): Promise<string>;
  /** Resolves to a UPID, or null when PVE finished within `delay` seconds. */
  deleteVolume(params: { volid: string; node?: string; delay?: number }): Promise<string | null>;
  /** `oci-registry-pull`; `volid` is where the archive will be (`storage:vztmpl/name.tar`). */
  pullOciImage(
    params: { storage: string; reference: string; filename?: string; node?: string },
  ): Promise<{ upid: string; volid: string }>;
  taskStatus(upid: string): Promise<TaskStatus>;
  taskLog(upid: string, range?: { start?: number; limit?: number }): Promise<TaskLogLine[]>;
  /** Polls until the task stopped; resolves on OK or WARNINGS, throws the task's error. */
  waitForTask(upid: string, options?: WaitOptions): Promise<TaskStatus>;
  /** Closes idle connections. */
  close(): void;
}
