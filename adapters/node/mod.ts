/**
 * The node side of a pod and its containers: pinned namespaces, and what the Proxmox API
 * cannot tell (a container's init pid, exit code, reason, finish time). The memory
 * implementation serves the memory backend and tests; the LXC one comes with the LXC driver.
 */
export interface PinnedNamespaces {
  /** ns kind (`net`, `ipc`, `uts`) → file the namespace is pinned to. */
  paths: Record<string, string>;
}

export interface ExitStatus {
  exitCode: number;
  /** As the CRI reports it: `Completed` (exit 0), `Error`, `OOMKilled`, `StartError`. */
  reason: string;
  message?: string;
  /** ms since the epoch. */
  finishedAt: number;
}

export interface NodeAdapter {
  /** Pins new namespaces for a sandbox; idempotent for the same sandbox id. */
  pinNamespaces(sandboxId: string): Promise<PinnedNamespaces>;
  /** Releases them; idempotent (already released is fine). */
  unpinNamespaces(sandboxId: string, paths: Record<string, string> | null): Promise<void>;
  /** The CT's init process just started: its pid and start time. */
  processStarted(vmid: number): Promise<{ pid?: number; startedAt: number }>;
  /**
   * How the CT's init process ended. `how` says what pve-cri did to it, when anything: a
   * graceful stop (SIGTERM) or a kill (SIGKILL).
   */
  exitStatus(vmid: number, how: "stopped" | "killed" | "exited"): Promise<ExitStatus>;
}
