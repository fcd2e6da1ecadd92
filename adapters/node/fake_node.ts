import type { ExitStatus, NodeAdapter, PinnedNamespaces } from "./mod.ts";

/**
 * The memory backend's stand-in (and unit tests'), never a real backend's: namespaces kept in
 * memory as names only, the CT's init taken as the app, exit codes made up from what pve-cri
 * did (SIGTERM → 143, SIGKILL → 137, as a shell reports them), pids made up.
 */
export class FakeNode implements NodeAdapter {
  readonly pinned = new Map<string, PinnedNamespaces>();
  readonly #clock: () => number;
  #nextPid = 1000;

  constructor(options: { clock?: () => number } = {}) {
    this.#clock = options.clock ?? Date.now;
  }

  pinNamespaces(sandboxId: string): Promise<PinnedNamespaces> {
    let ns = this.pinned.get(sandboxId);
    if (ns === undefined) {
      const base = `/run/pve-cri/ns/${sandboxId}`;
      ns = { paths: { net: `${base}/net`, ipc: `${base}/ipc`, uts: `${base}/uts` } };
      this.pinned.set(sandboxId, ns);
    }
    return Promise.resolve(ns);
  }

  unpinNamespaces(sandboxId: string): Promise<void> {
    this.pinned.delete(sandboxId);
    return Promise.resolve();
  }

  processStarted(_vmid: number): Promise<{ pid?: number; startedAt: number }> {
    return Promise.resolve({ pid: this.#nextPid++, startedAt: this.#clock() });
  }

  exitStatus(_vmid: number, how: "stopped" | "killed" | "exited"): Promise<ExitStatus> {
    const finishedAt = this.#clock();
    if (how === "killed") return Promise.resolve({ exitCode: 137, reason: "Error", finishedAt });
    if (how === "stopped") return Promise.resolve({ exitCode: 143, reason: "Error", finishedAt });
    return Promise.resolve({ exitCode: 0, reason: "Completed", finishedAt });
  }
}
