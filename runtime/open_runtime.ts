/**
 * Builds a running pve-cri from its parts: the event log, Proxmox (a real cluster, or the
 * embedded simulator reached through the same client), the node, CNI and hooks adapters,
 * the registry with every effect bound, and the PodRuntime the CRI serves. One place binds
 * effect names to adapters.
 */
import { MemoryCni } from "../adapters/cni/memory_cni.ts";
import type { NetworkPlugin } from "../adapters/cni/mod.ts";
import { type HookRunner, noHooks } from "../adapters/hooks/mod.ts";
import { MemoryNode } from "../adapters/node/memory_node.ts";
import type { NodeAdapter } from "../adapters/node/mod.ts";
import {
  clientOptionsFromConfig,
  createProxmoxClient,
  loadProxmoxConfig,
  type ProxmoxApi,
  type ProxmoxConfig,
} from "../adapters/proxmox/mod.ts";
import { type Simulator, simulatorConfig, startSimulator } from "../adapters/proxmox/sim/mod.ts";
import { FailedPreconditionError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { databasePath } from "../lib/paths.ts";
import { upcastEvent } from "../machines/events.ts";
import { type ContainerSummary, projectors } from "../machines/projections.ts";
import { Registry } from "../machines/registry.ts";
import type { SandboxContext } from "../machines/sandbox_context.ts";
import { EventStore } from "../store/mod.ts";
import { containerEffects } from "./container_effects.ts";
import { KernelRuntime } from "./kernel_runtime.ts";
import { sandboxEffects } from "./sandbox_effects.ts";
import { TemplateImages } from "./template_images.ts";
import type { SandboxSpec } from "./api.ts";

export type Backend = "memory" | "lxc" | "proxmox";

export interface OpenRuntimeOptions {
  stateDir: string;
  backend: Backend;
  /** The Proxmox config file, for the `proxmox` backend. */
  configFile?: string;
  log: Logger;
  version: string;
  /** Replace adapters (tests). */
  node?: NodeAdapter;
  cni?: NetworkPlugin;
  hooks?: HookRunner;
}

export interface OpenRuntime {
  runtime: KernelRuntime;
  registry: Registry;
  store: EventStore;
  api: ProxmoxApi;
  simulator: Simulator | undefined;
  /** Stops effects, closes the log and Proxmox connections, stops the embedded simulator. */
  close(): Promise<void>;
}

export async function openRuntime(options: OpenRuntimeOptions): Promise<OpenRuntime> {
  const { stateDir, log } = options;
  if (options.backend === "lxc") {
    throw new FailedPreconditionError(
      "The lxc backend needs the simulator's LXC driver, which is not built yet: use memory",
    );
  }
  // The event log (container env values) and the simulator's credentials live here.
  Deno.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  let simulator: Simulator | undefined;
  let config: ProxmoxConfig;
  if (options.backend === "proxmox") {
    if (options.configFile === undefined) {
      throw new FailedPreconditionError("--backend proxmox needs --config FILE");
    }
    config = loadProxmoxConfig(options.configFile);
  } else {
    // The embedded simulator keeps its CTs under the state dir: a restarted pve-cri finds them.
    simulator = await startSimulator({
      stateDir: `${stateDir}/proxmox`,
      logger: log.with({ component: "simulator" }),
    });
    config = simulatorConfig(simulator);
  }
  const api = createProxmoxClient({
    ...clientOptionsFromConfig(config),
    logger: log.with({ component: "proxmox" }),
  });
  const store = EventStore.open({
    path: databasePath(stateDir),
    upcast: upcastEvent,
    projectors,
    log: log.with({ component: "store" }),
    backgroundCheckpoint: true,
  });
  const node = options.node ?? new MemoryNode();
  const cni = options.cni ?? new MemoryCni();
  const images = new TemplateImages({ api, storage: config.storage.templates });
  // Effects ask the registry about other streams; it exists once Registry.open returns, and
  // effects resumed inside Registry.open may already ask.
  const opened: { registry?: Registry } = {};
  const sandboxFacts = (id: string) => {
    const actor = opened.registry?.get(id);
    if (actor?.kind !== "sandbox") return undefined;
    const context = actor.state.context as SandboxContext;
    const spec = context.config as SandboxSpec;
    return { metadata: context.metadata, hostname: spec.hostname };
  };
  const registry = opened.registry = Registry.open({
    store,
    log: log.with({ component: "registry" }),
    effects: {
      sandbox: sandboxEffects({ node, cni }),
      container: containerEffects({
        api,
        node,
        hooks: options.hooks ?? noHooks,
        images,
        rootfs: { storage: config.storage.rootfs, sizeGiB: 1 },
        sandbox: sandboxFacts,
        vmidsInUse: () => {
          const held = new Set<number>();
          for (const actor of opened.registry?.actors("container") ?? []) {
            const vmid = (actor.summary as ContainerSummary).vmid;
            if (vmid !== null) held.add(vmid);
          }
          return held;
        },
        log: log.with({ component: "effects" }),
      }),
    },
  });
  const runtime = new KernelRuntime({
    registry,
    api,
    cni,
    images,
    log,
    version: options.version,
    imageFsMountpoint: `${stateDir}/proxmox`,
  });
  return {
    runtime,
    registry,
    store,
    api,
    simulator,
    async close() {
      registry.close();
      await Promise.race([registry.whenIdle(), new Promise((r) => setTimeout(r, 5000))]);
      store.close();
      api.close();
      await simulator?.close();
    },
  };
}
