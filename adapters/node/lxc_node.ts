/**
 * The real node adapter, for this machine and a Proxmox VE node alike: pods' pinned
 * namespaces and files under pve-cri's directory, and containers' processes through the
 * conmon supervisor. It never depends on the simulator: the lxcpath and the PVE config dir
 * are settings (`/var/lib/lxc` and `/etc/pve/lxc` on a node).
 */
import { join } from "node:path";
import type { Logger } from "../../lib/log.ts";
import { LxcTools } from "../lxc/lxc_tools.ts";
import { ConmonSupervisor } from "./conmon_supervisor.ts";
import type { NodeAdapter, PinnedNamespaces, PodSetup } from "./mod.ts";
import { writePodFiles } from "./pod_files.ts";
import { runTool } from "./run_tool.ts";
import { mountPoints, pinPodNamespaces, unpinPodNamespaces } from "./pod_namespaces.ts";

export interface LxcNodeOptions {
  /** pve-cri's directory on the node (pods, containers). */
  dir: string;
  lxcpath: string;
  pveConfigDir: string;
  log: Logger;
}

export class LxcNode implements NodeAdapter {
  readonly processes: ConmonSupervisor;
  readonly #dir: string;

  constructor(options: LxcNodeOptions) {
    this.#dir = options.dir;
    Deno.mkdirSync(join(options.dir, "pods"), { recursive: true, mode: 0o711 });
    this.processes = new ConmonSupervisor({
      dir: options.dir,
      podDir: (id) => this.podDir(id),
      lxc: new LxcTools(options.lxcpath),
      pveConfigDir: options.pveConfigDir,
      log: options.log,
    });
  }

  podDir(sandboxId: string): string {
    return join(this.#dir, "pods", sandboxId);
  }

  async pinNamespaces(sandboxId: string, pod: PodSetup): Promise<PinnedNamespaces> {
    const dir = this.podDir(sandboxId);
    const paths = await pinPodNamespaces(join(dir, "ns"), pod);
    writePodFiles(dir, pod);
    return { paths };
  }

  lostNamespaces(paths: Record<string, string>): string[] {
    const mounted = mountPoints();
    return Object.entries(paths).filter(([, path]) => !mounted.has(path)).map(([kind]) => kind);
  }

  async lostInterfaces(netns: string, ifnames: readonly string[]): Promise<string[]> {
    const links = await runTool("nsenter", [`--net=${netns}`, "ip", "-o", "link", "show"]);
    // `2: eth0@if7: <…>`: the name before any `@peer`.
    const present = new Set(
      links.split("\n").map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1]).filter((n) => n),
    );
    return ifnames.filter((name) => !present.has(name));
  }

  podsOnNode(): string[] {
    return [...Deno.readDirSync(join(this.#dir, "pods"))].map((e) => e.name);
  }

  async unpinNamespaces(sandboxId: string, paths: Record<string, string> | null): Promise<void> {
    const dir = this.podDir(sandboxId);
    await unpinPodNamespaces(join(dir, "ns"), paths);
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  close(): void {
    this.processes.close();
  }
}
