/**
 * The node side of a pod and its containers: pinned namespaces and pod files, joining a CT to
 * its pod, and the process plane (what the Proxmox API cannot do or tell: a container's
 * process, its exit code, reason and finish time, exec, logs). `LxcNode` is the real one;
 * `tests/_support/fake_node.ts` stands in for unit tests and the memory backend.
 */
import type { DnsConfig, Mount } from "../../runtime/api.ts";

export interface PinnedNamespaces {
  /** ns kind (`net`, `ipc`, `uts`) → file the namespace is pinned to. */
  paths: Record<string, string>;
}

export interface PodSetup {
  hostname: string;
  dns: DnsConfig | null;
  hostNetwork: boolean;
  hostIpc: boolean;
  sysctls: Record<string, string>;
}

export interface ExitStatus {
  exitCode: number;
  /** As the CRI reports it: `Completed` (exit 0), `Error`, `OOMKilled`, `StartError`, `Unknown`. */
  reason: string;
  message?: string;
  /** ms since the epoch. */
  finishedAt: number;
}

/** What joining a CT to its pod needs. */
export interface CtSetup {
  containerId: string;
  sandboxId: string;
  vmid: number;
  namespaces: Record<string, string>;
  /** The CRI's mounts; the pod's hosts file is mounted only where none targets /etc/hosts. */
  mounts: Mount[];
}

/** The container's process as the CRI and the image define it. */
export interface ProcessSpec {
  containerId: string;
  vmid: number;
  argv: string[];
  env: string[];
  /** Numeric `uid[:gid]` or a name from the image's /etc/passwd; "" = root. */
  user: string;
  workingDir: string;
  /** The CRI log file; "" = no log. */
  logPath: string;
}

export interface ExecRequest {
  vmid: number;
  argv: string[];
  env: string[];
  user: string;
  workingDir: string;
  /** 0 = none. */
  timeoutSeconds: number;
  signal?: AbortSignal;
  /** Written to the process's stdin, then closed (none: stdin is /dev/null). */
  stdin?: Uint8Array;
}

export interface ExecResult {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  timedOut: boolean;
}

export interface CtUsage {
  cpuUsageNs: bigint;
  memoryWorkingSetBytes: number;
  memoryLimitBytes: number | undefined;
  /** The CT's root filesystem (its only layer: a CT has no image layers beneath it). */
  rootfs?: { mountpoint: string; usedBytes: number; inodesUsed: number };
}

/**
 * The process plane when the app is not the CT's init: pve-cri starts it beside an idle init,
 * under a monitor that outlives pve-cri, and signals it itself.
 */
export interface ProcessSupervisor {
  /**
   * Writes what the CT needs to join its pod and run an idle init (the app runs beside it),
   * and adds it to the CT's config.
   */
  prepareCt(setup: CtSetup): Promise<{ includeFile: string; mounts: number }>;
  start(spec: ProcessSpec): Promise<{ pid: number; startedAt: number }>;
  /** Sends a signal to the app (never its monitor); a process already gone is fine. */
  signal(containerId: string, signal: string): Promise<void>;
  /** Resolves with the exit once it is on disk; rejects only when `abort` fires. */
  waitExit(containerId: string, abort: AbortSignal): Promise<ExitStatus>;
  /** The exit recorded on disk (also while pve-cri was down), if any. */
  exitOf(containerId: string): ExitStatus | undefined;
  /** Is the process's monitor alive? A dead one with no exit file lost the exit. */
  monitorAlive(containerId: string): boolean;
  /** Called for every exit recorded from now on; returns the unsubscribe. */
  onExit(listener: (containerId: string, exit: ExitStatus) => void): () => void;
  exec(request: ExecRequest): Promise<ExecResult>;
  /** The CT's init on the host while the CT runs (what hooks before the app are given). */
  initPid(vmid: number): Promise<number | undefined>;
  /** The container's directory on the node: the OCI bundle hooks are given and run in. */
  bundleOf(containerId: string): string;
  reopenLog(containerId: string): Promise<void>;
  usage(vmid: number): Promise<CtUsage | undefined>;
  /** Containers that have anything on the node (include file, monitor dir, exit files). */
  containersOnNode(): string[];
  /** Removes what the container left on the node (include file, monitor dir, exit file). */
  release(containerId: string): Promise<void>;
}

export interface NodeAdapter {
  /** Pins new namespaces for a sandbox; idempotent for the same sandbox id. */
  pinNamespaces(sandboxId: string, pod: PodSetup): Promise<PinnedNamespaces>;
  /** Sandboxes that have pinned namespaces or pod files on the node. */
  podsOnNode?(): string[];
  /** The kinds (`net`, …) whose pinned namespace is no longer there. */
  lostNamespaces?(paths: Record<string, string>): string[];
  /** Of `ifnames`, those the network namespace at `netns` no longer has. */
  lostInterfaces?(netns: string, ifnames: readonly string[]): Promise<string[]>;
  /**
   * Releases them and the pod's files; idempotent (already released is fine). Null paths:
   * whatever is pinned in the pod's directory.
   */
  unpinNamespaces(sandboxId: string, paths: Record<string, string> | null): Promise<void>;
  /** The real process plane; absent in the memory stand-in, whose CT init is the app. */
  readonly processes?: ProcessSupervisor;
  /** Memory stand-in only: the CT's init just started. */
  processStarted?(vmid: number): Promise<{ pid?: number; startedAt: number }>;
  /** Memory stand-in only: how the CT's init ended, from what pve-cri did to it. */
  exitStatus?(vmid: number, how: "stopped" | "killed" | "exited"): Promise<ExitStatus>;
}
