/**
 * Builds a running pve-cri from its parts: the event log, Proxmox (a real cluster, or the
 * embedded simulator reached through the same client), the node, CNI and hooks adapters,
 * the registry with every effect bound, and the PodRuntime the CRI serves. One place binds
 * effect names to adapters.
 */
import { FakeCni } from "../adapters/cni/fake_cni.ts";
import type { NetworkPlugin } from "../adapters/cni/mod.ts";
import { type HookRunner, noHooks } from "../adapters/hooks/mod.ts";
import { FakeNode } from "../adapters/node/fake_node.ts";
import type { NodeAdapter } from "../adapters/node/mod.ts";
import { dirname, join, resolve } from "node:path";
import { CniNetwork } from "../adapters/cni/cni_network.ts";
import { OciHooks } from "../adapters/hooks/oci_hooks.ts";
import { startCniGc } from "./cni_gc.ts";
import { Reconciler, startReconciler } from "./reconciler.ts";
import { PodCidrs } from "./pod_cidr.ts";
import { CrashPoints } from "../machines/crash_points.ts";
import { missingLxcTools } from "../adapters/lxc/lxc_tools.ts";
import { ConmonSupervisor } from "../adapters/node/conmon_supervisor.ts";
import { LxcNode } from "../adapters/node/lxc_node.ts";
import type { ExitStatus, ProcessSupervisor } from "../adapters/node/mod.ts";
import { observeContainerExit, removalUnderway } from "../machines/commands.ts";
import { LxcDriver } from "../adapters/proxmox/sim/lxc_driver.ts";
import { ContentStore } from "../adapters/oci/content_store.ts";
import { nodePlatform } from "../adapters/oci/manifest.ts";
import {
  clientOptionsFromConfig,
  createProxmoxClient,
  type ProxmoxApi,
  type ProxmoxConfig,
  PveNotFoundError,
} from "../adapters/proxmox/mod.ts";
import { RegistryClient, RegistryHosts } from "../adapters/registry/mod.ts";
import { type Simulator, simulatorConfig, startSimulator } from "../adapters/proxmox/sim/mod.ts";
import { FailedPreconditionError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { databasePath } from "../lib/paths.ts";
import { readServerInfo, type ServerInfo, StateDirLock } from "../lib/state_dir_lock.ts";
import { upcastEvent } from "../machines/events.ts";
import { type ContainerSummary, projectionNames, projectors } from "../machines/projections.ts";
import { Registry } from "../machines/registry.ts";
import type { SandboxContext } from "../machines/sandbox_context.ts";
import { EventStore } from "../store/mod.ts";
import { containerEffects } from "./container_effects.ts";
import { FetchSessions } from "./images/fetch_sessions.ts";
import { imageEffects } from "./images/image_effects.ts";
import { ImageService } from "./images/image_service.ts";
import { TemplateStore } from "./images/template_store.ts";
import { KernelRuntime, randomId } from "./kernel_runtime.ts";
import { defaultRuntimeConfig, loadRuntimeConfig, type RuntimeConfig } from "./runtime_config.ts";
import { sandboxEffects } from "./sandbox_effects.ts";
import type { ContainerSpec, SandboxSpec } from "./api.ts";
import type { ImageSummary } from "../machines/projections.ts";

export type Backend = "memory" | "lxc" | "proxmox";

export interface OpenRuntimeOptions {
  stateDir: string;
  backend: Backend;
  /** The config file: the Proxmox node (for the `proxmox` backend), registries, images. */
  configFile?: string;
  log: Logger;
  version: string;
  /** `--cni-conf-dir` and `--cni-bin-dir`: over the config file's `cni`. */
  cniConfDir?: string;
  cniBinDirs?: string[];
  /** `--hooks-dir` (repeatable): replaces the config file's `hooks.dirs`. */
  hooksDirs?: string[];
  /** Replace adapters (tests). */
  node?: NodeAdapter;
  cni?: NetworkPlugin;
  hooks?: HookRunner;
}

export interface OpenRuntime {
  runtime: KernelRuntime;
  /** The state dir's lock, held until close. */
  lock: StateDirLock;
  registry: Registry;
  store: EventStore;
  api: ProxmoxApi;
  images: ImageService;
  simulator: Simulator | undefined;
  /** The log against Proxmox and the node (runs at startup and every interval). */
  reconciler: Reconciler;
  /** The config file's settings (the defaults without one). */
  settings: RuntimeConfig;
  /** Stops effects, closes the log and Proxmox connections, stops the embedded simulator. */
  close(): Promise<void>;
}

export async function openRuntime(options: OpenRuntimeOptions): Promise<OpenRuntime> {
  const { stateDir } = options;
  if (options.backend !== "memory" && options.node === undefined) {
    const missing = missingNodeTools();
    if (missing !== undefined) {
      throw new FailedPreconditionError(`--backend ${options.backend}: ${missing}`);
    }
  }
  // Test-only crash points (PVE_CRI_CRASH_AFTER, PVE_CRI_CRASH_BEFORE_EFFECT); off when unset.
  // Read first: a misspelt point fails before anything is opened.
  const crash = CrashPoints.fromEnv(
    (name) => Deno.env.get(name),
    options.log.with({ component: "crash" }),
  );
  // The event log (container env values) and the simulator's credentials live here.
  Deno.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const lock = await StateDirLock.acquire(stateDir);
  if (lock === undefined) {
    const holder = readServerInfo(stateDir);
    throw new StateDirInUseError(stateDir, holder);
  }
  try {
    return await openLocked(options, lock, crash);
  } catch (error) {
    lock.release();
    throw error;
  }
}

/**
 * Exits reach the streams: those recorded while pve-cri was down at once, later ones as the
 * monitors record them. A running container whose monitor died without a record exited with
 * an unknown code.
 */
function collectExits(
  registry: Registry,
  processes: ProcessSupervisor,
  api: ProxmoxApi,
  log: Logger,
): () => void {
  const observe = async (id: string, exit: ExitStatus) => {
    try {
      await observeContainerExit(registry, id, await unlessCtGone(id, exit));
    } catch (error) {
      log.warn("recording an exit failed", { container_id: id, error: String(error) });
    }
  };
  /** A CT deleted behind pve-cri's back took the process with it: the code says nothing. */
  const unlessCtGone = async (id: string, exit: ExitStatus): Promise<ExitStatus> => {
    const vmid = (registry.get(id)?.summary as ContainerSummary | undefined)?.vmid;
    if (vmid === null || vmid === undefined) return exit;
    try {
      await api.ctConfig({ vmid });
      return exit;
    } catch (error) {
      if (!(error instanceof PveNotFoundError)) return exit;
      return {
        ...exit,
        reason: "Unknown",
        message: `CT ${vmid} was removed outside pve-cri (the process ended with ${exit.exitCode})`,
      };
    }
  };
  const unsubscribe = processes.onExit(observe);
  for (const actor of registry.actors("container")) {
    if (actor.value !== "running") continue;
    const exit = processes.exitOf(actor.stream);
    if (exit !== undefined) void observe(actor.stream, exit);
    else if (!processes.monitorAlive(actor.stream)) {
      void observe(actor.stream, {
        exitCode: 255,
        reason: "Unknown",
        message: "the container's monitor is gone and recorded no exit",
        finishedAt: Date.now(),
      });
    }
  }
  return unsubscribe;
}

/** What a real backend lacks on this machine, as the line to install it; undefined if nothing. */
export function missingNodeTools(): string | undefined {
  const lxc = missingLxcTools();
  if (lxc !== undefined) return lxc;
  const packages = ConmonSupervisor.missing();
  if (packages.length === 0) return undefined;
  return `${packages.join(", ")} not found — apt-get install ${packages.join(" ")}`;
}

/** Another process owns the state dir; `holder` says where it serves, when it said. */
export class StateDirInUseError extends FailedPreconditionError {
  constructor(readonly stateDir: string, readonly holder: ServerInfo | undefined) {
    super(
      `State dir "${stateDir}" is in use by another pve-cri process` +
        (holder === undefined ? "" : ` (pid ${holder.pid}, serving on ${holder.socket})`),
      { details: { stateDir } },
    );
  }
}

async function openLocked(
  options: OpenRuntimeOptions,
  lock: StateDirLock,
  crash: CrashPoints | undefined,
): Promise<OpenRuntime> {
  const { stateDir, log } = options;
  const settings: RuntimeConfig = options.configFile === undefined
    ? defaultRuntimeConfig
    : loadRuntimeConfig(options.configFile);
  let simulator: Simulator | undefined;
  let config: ProxmoxConfig;
  if (options.backend === "proxmox") {
    if (options.configFile === undefined) {
      throw new FailedPreconditionError("--backend proxmox needs --config FILE");
    }
    if (settings.proxmox === undefined) {
      throw new FailedPreconditionError(
        `--backend proxmox: config "${options.configFile}" names no Proxmox node ("url")`,
      );
    }
    config = settings.proxmox;
  } else {
    // The embedded simulator keeps its CTs under the state dir: a restarted pve-cri finds them.
    const simDir = `${resolve(stateDir)}/proxmox`;
    simulator = await startSimulator({
      stateDir: simDir,
      // Plain HTTP on loopback, token-authenticated: TLS in-process cost ~4 ms per container
      // create here, and calls over it now and then stalled ~40 ms. A real node is TLS.
      insecure: true,
      logger: log.with({ component: "simulator" }),
      ...(options.backend === "lxc"
        ? { driver: new LxcDriver({ lxcpath: `${simDir}/lxc-containers` }) }
        : {}),
      ...(settings.lxc.vmids === undefined
        ? {}
        : { nextId: { lower: settings.lxc.vmids[0], upper: settings.lxc.vmids[1] } }),
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
  // The memory backend alone runs on stand-ins; a real one gets the real node adapter.
  const realNode = options.node === undefined && options.backend !== "memory"
    ? new LxcNode({
      dir: `${resolve(stateDir)}/node`,
      lxcpath: simulator?.driver instanceof LxcDriver
        ? simulator.driver.lxcpath
        : settings.lxc.lxcpath,
      pveConfigDir: simulator === undefined
        ? settings.lxc.pveConfigDir
        : dirname(simulator.configPath(100)),
      log: log.with({ component: "node" }),
    })
    : undefined;
  const node: NodeAdapter = options.node ?? realNode ?? new FakeNode();
  const cni = options.cni ?? (options.backend === "memory" ? new FakeCni() : new CniNetwork({
    confDir: options.cniConfDir ?? settings.cni.confDir,
    binDirs: options.cniBinDirs ?? settings.cni.binDirs,
    cacheDir: join(stateDir, "node", "cni", "results"),
  }));
  // The memory backend runs nothing on the node, hooks included.
  const hooks = options.hooks ??
    (options.backend === "memory"
      ? noHooks
      : new OciHooks(options.hooksDirs ?? settings.hooks.dirs, log.with({ component: "hooks" })));
  const podCidrs = new PodCidrs(join(stateDir, "node", "cni", "pod-cidrs.json"));
  const content = ContentStore.open(join(stateDir, "content"));
  const hosts = new RegistryHosts(settings.registries);
  const sessions = new FetchSessions();
  const templates = new TemplateStore({ api, storage: config.storage.templates, content });
  // Effects ask the registry about other streams; it exists once Registry.open returns, and
  // effects resumed inside Registry.open may already ask.
  const opened: { registry?: Registry; images?: ImageService } = {};
  const imagesReady = () => {
    if (opened.images === undefined) throw new FailedPreconditionError("Images are not loaded yet");
    return opened.images;
  };
  const sandboxFacts = (id: string) => {
    const actor = opened.registry?.get(id);
    if (actor?.kind !== "sandbox") return undefined;
    const context = actor.state.context as SandboxContext;
    const spec = context.config as SandboxSpec;
    return {
      metadata: context.metadata,
      hostname: spec.hostname,
      namespaces: context.namespaces ?? {},
    };
  };
  const sandboxLogDirectory = (id: string): string => {
    const actor = opened.registry?.get(id);
    if (actor?.kind !== "sandbox") return "";
    return ((actor.state.context as SandboxContext).config as SandboxSpec).logDirectory;
  };
  const registry = opened.registry = Registry.open({
    store,
    log: log.with({ component: "registry" }),
    ...(crash === undefined ? {} : { crash }),
    effects: {
      sandbox: sandboxEffects({ node, cni, podCidrs: () => podCidrs.get() }),
      container: containerEffects({
        api,
        node,
        hooks,
        images: {
          require: (reference) => imagesReady().require(reference),
          specOf: (imageId) => imagesReady().specOf(imageId),
        },
        rootfs: { storage: config.storage.rootfs, sizeGiB: settings.rootfs.sizeGiB },
        logPathOf: (context) => {
          const directory = sandboxLogDirectory(context.sandboxId);
          const path = (context.config as ContainerSpec).logPath;
          return directory === "" || path === "" ? "" : join(directory, path);
        },
        sandbox: sandboxFacts,
        vmidsInUse: () => {
          const held = new Set<number>();
          for (const actor of opened.registry?.actors("container") ?? []) {
            const vmid = (actor.summary as ContainerSummary).vmid;
            if (vmid !== null) held.add(vmid);
          }
          return held;
        },
        removalsEnded: async (signal) => {
          const underway = (opened.registry?.actors("container") ?? [])
            .filter((actor) => removalUnderway.has(actor.value));
          await Promise.all(underway.map((actor) =>
            // A stream that ended has closed its actor: that is the end waited for too.
            actor.until((s) => !removalUnderway.has(s.value), signal).catch(() => undefined)
          ));
          return underway.length > 0;
        },
        log: log.with({ component: "effects" }),
      }),
      image: imageEffects({
        content,
        templates,
        sessions,
        // From the store, not the actors: a removal resumed while the registry opens asks too.
        blobsInUse: (stream) => {
          const blobs = new Set<string>();
          for (const row of store.listProjectionSummaries<ImageSummary>(projectionNames.image)) {
            if (row.stream === stream) continue;
            for (const digest of row.summary.blobs) blobs.add(digest);
          }
          return blobs;
        },
      }),
    },
  });
  const images = opened.images = new ImageService({
    registry,
    client: new RegistryClient({ hosts, log: log.with({ component: "registry-client" }) }),
    content,
    sessions,
    platform: nodePlatform(),
    pullMode: settings.images.pull,
    log: log.with({ component: "images" }),
    newId: randomId,
    containersUsing: (imageId) =>
      registry.actors("container")
        // A container whose removal is under way no longer uses its image (its CT's root is
        // its own, or holds the base it was cloned from).
        .filter((a) => !removalUnderway.has(a.value))
        .filter((a) => (a.summary as ContainerSummary).imageId === imageId)
        .map((a) => a.stream),
  });
  const runtime = new KernelRuntime({
    registry,
    api,
    cni,
    images,
    log,
    version: options.version,
    ...(node.processes === undefined ? {} : { processes: node.processes }),
    hooks,
    podCidrs,
  });
  const stopCniGc = startCniGc(
    registry,
    cni,
    settings.cni.gcIntervalSeconds * 1000,
    log.with({ component: "cni" }),
  );
  const stopCollecting = node.processes === undefined
    ? () => {}
    : collectExits(registry, node.processes, api, log.with({ component: "exits" }));
  const reconcileLog = log.with({ component: "reconcile" });
  const reconciler = new Reconciler({
    api,
    registry,
    node,
    cni,
    log: reconcileLog,
    orphanGraceMs: settings.reconcile.orphanGraceSeconds * 1000,
  });
  const stopReconciling = startReconciler(
    reconciler,
    settings.reconcile.intervalSeconds * 1000,
    reconcileLog,
  );
  return {
    runtime,
    lock,
    registry,
    store,
    api,
    images,
    simulator,
    reconciler,
    settings,
    async close() {
      stopReconciling();
      stopCollecting();
      stopCniGc();
      realNode?.close();
      registry.close();
      // Effects still running are recorded as started: the next start resumes them.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([registry.whenIdle(), new Promise((r) => timer = setTimeout(r, 1000))]);
      clearTimeout(timer);
      store.close();
      api.close();
      hosts.close();
      try {
        await simulator?.close();
      } finally {
        lock.release();
      }
    },
  };
}
