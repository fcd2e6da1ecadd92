/**
 * The PodRuntime over the kernel: CRI-level commands become machine commands, views come from
 * the live actors (summaries for lists, full state for status), images from template storage.
 */
import { checkMount } from "../adapters/node/ct_include.ts";
import type { NetworkPlugin } from "../adapters/cni/mod.ts";
import type { ProxmoxApi } from "../adapters/proxmox/mod.ts";
import {
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  RuntimeError,
} from "../lib/errors.ts";
import type { ProcessSupervisor } from "../adapters/node/mod.ts";
import { type HookRunner, noHooks } from "../adapters/hooks/mod.ts";
import type { Logger } from "../lib/log.ts";
import * as commands from "../machines/commands.ts";
import type { ContainerContext } from "../machines/container_context.ts";
import { machines } from "../machines/fold.ts";
import type { ContainerSummary, SandboxSummary } from "../machines/projections.ts";
import type { Registry } from "../machines/registry.ts";
import type { SandboxContext, StepError } from "../machines/sandbox_context.ts";
import type { StreamActor } from "../machines/stream_actor.ts";
import { ProjectionKeyConflictError } from "../store/mod.ts";
import type {
  CallInfo,
  ContainerEventType,
  ContainerLifecycleEvent,
  ContainerListItem,
  ContainerSpec,
  ContainerStatsView,
  ContainerView,
  CriResources,
  ImageView,
  ImportOptions,
  PodRuntime,
  PullOptions,
  RuntimeReadiness,
  SandboxListItem,
  SandboxSpec,
  SandboxView,
} from "./api.ts";
import { mergeEnv, processArgv } from "./container_env.ts";
import type { PodCidrs } from "./pod_cidr.ts";
import { podOf } from "./sandbox_effects.ts";
import { CpuIntegrator } from "./cpu_integrator.ts";
import { proxmoxLimits } from "./limits.ts";
import type { ImageService } from "./images/image_service.ts";
import {
  containerListItem,
  containerState,
  containerView,
  sandboxListItem,
  sandboxView,
} from "./views.ts";

export interface KernelRuntimeOptions {
  registry: Registry;
  api: ProxmoxApi;
  cni: NetworkPlugin;
  images: ImageService;
  log: Logger;
  version: string;
  /** The real process plane; without it, exec and logs are not served. */
  processes?: ProcessSupervisor;
  /** Which OCI hooks a new container gets (none by default). */
  hooks?: HookRunner;
  /** Where the kubelet's pod CIDRs are kept (UpdateRuntimeConfig). */
  podCidrs?: PodCidrs;
  /** New ids; random 64-hex ids by default, as containerd makes them. */
  newId?: () => string;
}

type SandboxActor = StreamActor<SandboxContext, SandboxSummary>;
type ContainerActor = StreamActor<ContainerContext, ContainerSummary>;

export class KernelRuntime implements PodRuntime {
  readonly #processes: ProcessSupervisor | undefined;
  readonly #hooks: HookRunner;
  readonly #podCidrs: PodCidrs | undefined;
  readonly name = "pve-cri";
  readonly version: string;
  readonly #registry: Registry;
  /**
   * List items by the summary they were made from. An actor's summary is replaced whenever it
   * may have changed, so an unchanged stream lists as the same object, which the CRI adapter
   * keeps encoded (the kubelet relists every second).
   */
  readonly #containerItems = new WeakMap<ContainerSummary, ContainerListItem>();
  readonly #sandboxItems = new WeakMap<SandboxSummary, SandboxListItem>();
  readonly #api: ProxmoxApi;
  readonly #cni: NetworkPlugin;
  readonly #images: ImageService;
  readonly #log: Logger;
  readonly #newId: () => string;
  readonly #cpu = new CpuIntegrator();
  /**
   * Sandboxes whose RunPodSandbox caller gave up (or whose creation a restart resumed): a
   * retry with the same metadata gets them instead of AlreadyExists (CRI-O's resource store).
   */
  readonly #abandoned = new Set<string>();

  constructor(options: KernelRuntimeOptions) {
    this.version = options.version;
    this.#registry = options.registry;
    this.#api = options.api;
    this.#cni = options.cni;
    this.#images = options.images;
    this.#log = options.log;
    this.#newId = options.newId ?? randomId;
    this.#processes = options.processes;
    this.#hooks = options.hooks ?? noHooks;
    this.#podCidrs = options.podCidrs;
    for (const actor of this.#registry.actors("sandbox")) {
      if (!machines.sandbox.isSettled(actor.value)) this.#abandoned.add(actor.stream);
    }
  }

  async readiness(): Promise<RuntimeReadiness> {
    const network = await this.#cni.status();
    return {
      runtimeReady: !this.#registry.closed,
      networkReady: network.ready,
      networkReason: network.ready ? "" : network.reason,
      networkMessage: network.message,
      info: {
        sandboxes: this.#registry.actors("sandbox").length,
        containers: this.#registry.actors("container").length,
        lastEventSeq: this.#registry.store.lastSeq,
      },
    };
  }

  resolveSandbox(idOrPrefix: string): string | undefined {
    return this.#registry.resolvePrefix(idOrPrefix, "sandbox");
  }

  resolveContainer(idOrPrefix: string): string | undefined {
    const id = this.#registry.resolvePrefix(idOrPrefix, "container");
    return id === undefined ? undefined : this.#containerActor(id)?.stream;
  }

  async runPodSandbox(spec: SandboxSpec, call: CallInfo): Promise<SandboxView> {
    const id = this.#newId();
    let state: commands.SandboxState;
    try {
      state = await commands.runPodSandbox(this.#registry, {
        id,
        metadata: spec.metadata,
        networks: this.#cni.networksFor(spec.hostNetwork),
        runtimeHandler: spec.runtimeHandler,
        config: spec,
      }, this.#options(call));
    } catch (error) {
      if (error instanceof ProjectionKeyConflictError) {
        return await this.#retried(error.holder, call);
      }
      if (call.signal?.aborted) this.#abandoned.add(id);
      throw error;
    }
    // The caller left before the answer: a retry gets this sandbox (a failed one is gone).
    if (call.signal?.aborted && state.value !== "failed") this.#abandoned.add(id);
    return this.#sandboxResult(id, state);
  }

  /** A second RunPodSandbox for the same pod: the first one's sandbox, or AlreadyExists. */
  async #retried(holder: string, call: CallInfo): Promise<SandboxView> {
    const actor = this.#sandboxActor(holder);
    if (actor === undefined) this.#abandoned.delete(holder);
    if (actor === undefined || !this.#abandoned.has(holder)) {
      throw new AlreadyExistsError(
        `A pod sandbox with this name, namespace, uid and attempt exists: "${holder}"`,
        { details: { sandbox_id: holder } },
      );
    }
    const state = await actor.until((s) => machines.sandbox.isSettled(s.value), call.signal);
    this.#abandoned.delete(holder);
    return this.#sandboxResult(holder, state);
  }

  #sandboxResult(id: string, state: commands.SandboxState): SandboxView {
    if (state.value !== "failed") return sandboxView(id, state.value, state.context);
    throw stepFailure(state.context.lastError, "Pod sandbox failed and was rolled back", {
      sandbox_id: id,
    });
  }

  async stopPodSandbox(id: string, call: CallInfo): Promise<void> {
    const state = await commands.stopPodSandbox(this.#registry, id, this.#options(call));
    this.#failIfStuck(id, state, "stopFailed");
  }

  async removePodSandbox(id: string, call: CallInfo): Promise<void> {
    const state = await commands.removePodSandbox(this.#registry, id, this.#options(call));
    this.#abandoned.delete(id);
    if (state !== undefined && state.value !== "removed") {
      this.#failIfStuck(id, state, state.value);
    }
  }

  #failIfStuck(id: string, state: commands.SandboxState | undefined, failed: string): void {
    if (state === undefined || state.value !== failed) return;
    throw stepFailure(state.context.lastError, `Pod sandbox "${id}" is ${state.value}`, {
      sandbox_id: id,
    });
  }

  sandbox(id: string): SandboxView | undefined {
    const actor = this.#sandboxActor(id);
    if (actor === undefined) return undefined;
    const state = actor.state;
    return sandboxView(id, state.value, state.context);
  }

  setPodCidrs(cidrs: string[]): void {
    if (this.#podCidrs === undefined) return;
    if (cidrs.join(",") === this.#podCidrs.get().join(",")) return;
    this.#podCidrs.set(cidrs);
    this.#log.info("pod CIDRs from the kubelet", { pod_cidrs: cidrs.join(",") });
  }

  sandboxInfo(id: string): Record<string, unknown> {
    const actor = this.#sandboxActor(id);
    if (actor === undefined) return {};
    const vmids = actor.state.context.containers
      .map((c) => (this.#anyContainerActor(c.id)?.summary.vmid ?? null))
      .filter((v): v is number => v !== null);
    return {
      state: actor.value,
      events: actor.version,
      vmids,
      networks: actor.state.context.attached.map((n) => `${n.name}/${n.ifname}`),
    };
  }

  async sandboxNetworkCheck(id: string): Promise<Record<string, string>> {
    const actor = this.#sandboxActor(id);
    const check = this.#cni.check?.bind(this.#cni);
    if (actor === undefined || check === undefined) return {};
    const { context } = actor.state;
    const spec = context.config as SandboxSpec;
    const results: Record<string, string> = {};
    for (const net of context.attached) {
      try {
        await check({
          sandboxId: id,
          netns: context.namespaces?.net ?? "",
          name: net.name,
          ifname: net.ifname,
          pod: podOf(spec),
        });
        results[`${net.name}/${net.ifname}`] = "ok";
      } catch (error) {
        results[`${net.name}/${net.ifname}`] = error instanceof Error
          ? error.message
          : String(error);
      }
    }
    return results;
  }

  sandboxes(): SandboxListItem[] {
    const actors = this.#registry.actors("sandbox") as SandboxActor[];
    return actors.map((a) => itemOf(this.#sandboxItems, a, sandboxListItem));
  }

  async createContainer(
    sandboxId: string,
    spec: ContainerSpec,
    call: CallInfo,
  ): Promise<ContainerView> {
    spec.mounts.forEach(checkMount);
    const id = this.#newId();
    const { envs, ...config } = spec;
    // As containerd does, the image is found before anything is recorded; the stream then
    // holds it from its first commit (and a removal waits until it does).
    const image = this.#images.require(spec.image, "config.image.image");
    const release = this.#images.hold(image.id);
    let state: commands.ContainerState;
    try {
      state = await this.#retryAfterRemoval(call, () =>
        commands.createContainer(this.#registry, {
          id,
          sandboxId,
          metadata: { name: spec.name, attempt: spec.attempt },
          image: spec.image,
          resolvedImage: { imageId: image.id, template: image.volid },
          envs,
          // Chosen now, as CRI-O does: a hooks.d change later does not change this container.
          hooks: this.#hooks.hooksFor({
            annotations: spec.annotations,
            command: processArgv(spec, this.#images.specOf(image.id))[0] ?? "",
            hasBindMounts: spec.mounts.length > 0,
          }),
          config,
        }, this.#options(call)));
    } catch (error) {
      if (error instanceof ProjectionKeyConflictError) {
        throw new AlreadyExistsError(
          `Container "${spec.name}" (attempt ${spec.attempt}) exists in sandbox "${sandboxId}": ` +
            `"${error.holder}"`,
          { details: { container_id: error.holder, sandbox_id: sandboxId } },
        );
      }
      throw error;
    } finally {
      release();
    }
    if (state.value === "failed") {
      throw stepFailure(state.context.lastError, "Container creation failed and was rolled back", {
        container_id: id,
        sandbox_id: sandboxId,
      });
    }
    return containerView(
      id,
      state.value,
      state.context,
      this.#logDirectory(state.context.sandboxId),
    );
  }

  /**
   * Runs `create`; if the name it takes is held by a container whose removal is under way
   * (gone for the CRI), waits for that removal to end and tries once more.
   */
  async #retryAfterRemoval<T>(call: CallInfo, create: () => Promise<T>): Promise<T> {
    try {
      return await create();
    } catch (error) {
      const holder = error instanceof ProjectionKeyConflictError
        ? this.#anyContainerActor(error.holder)
        : undefined;
      if (holder === undefined || !commands.removalUnderway.has(holder.value)) throw error;
      await holder.until((s) => !commands.removalUnderway.has(s.value), call.signal)
        .catch(() => undefined); // closed: the stream ended
      return await create();
    }
  }

  async startContainer(id: string, call: CallInfo): Promise<void> {
    const state = await commands.startContainer(this.#registry, id, this.#options(call));
    if (state.value === "exited" && state.context.reason === "StartError") {
      throw stepFailure(state.context.lastError, `Container "${id}" failed to start`, {
        container_id: id,
      });
    }
  }

  async stopContainer(id: string, timeoutSeconds: number, call: CallInfo): Promise<void> {
    const state = await commands.stopContainer(
      this.#registry,
      id,
      timeoutSeconds,
      this.#options(call),
    );
    if (state?.value === "running" && state.context.lastError !== null) {
      throw stepFailure(state.context.lastError, `Stopping container "${id}" failed`, {
        container_id: id,
      });
    }
  }

  async removeContainer(id: string, call: CallInfo): Promise<void> {
    const state = await commands.requestContainerRemoval(this.#registry, id, this.#options(call));
    if (state?.value === "removeFailed") {
      throw stepFailure(state.context.lastError, `Removing container "${id}" failed`, {
        container_id: id,
      });
    }
  }

  async updateContainerResources(
    id: string,
    resources: CriResources,
    call: CallInfo,
  ): Promise<void> {
    const limits = proxmoxLimits(resources);
    await commands.updateContainerResources(this.#registry, id, limits, this.#options(call));
  }

  container(id: string): ContainerView | undefined {
    const actor = this.#containerActor(id);
    if (actor === undefined) return undefined;
    const state = actor.state;
    return containerView(
      id,
      state.value,
      state.context,
      this.#logDirectory(state.context.sandboxId),
    );
  }

  /** The sandbox's log directory; "" once the sandbox is gone (its containers go with it). */
  #logDirectory(sandboxId: string): string {
    const config = this.#sandboxActor(sandboxId)?.state.context.config as SandboxSpec | undefined;
    return config?.logDirectory ?? "";
  }

  containerInfo(id: string): Record<string, unknown> {
    const actor = this.#containerActor(id);
    if (actor === undefined) return {};
    const c = actor.state.context;
    return {
      state: actor.value,
      events: actor.version,
      vmid: c.vmid,
      // As containerd's: the process's host pid while it runs (crictl inspect shows it).
      ...(c.pid === null || actor.value !== "running" ? {} : { pid: c.pid }),
      template: c.template,
      warnings: c.warnings,
      ...(c.lastError === null ? {} : { lastError: c.lastError }),
    };
  }

  containers(): ContainerListItem[] {
    const actors = (this.#registry.actors("container") as ContainerActor[])
      .filter((a) => !commands.removalUnderway.has(a.value));
    return actors.map((a) => itemOf(this.#containerItems, a, containerListItem));
  }

  async containerStats(id: string): Promise<ContainerStatsView | undefined> {
    const actor = this.#containerActor(id);
    if (actor === undefined) return undefined;
    const { summary } = actor;
    const now = Date.now();
    let cpuNs = this.#cpu.total(id);
    let memory = 0;
    let available: string | null = null;
    let writableLayer: ContainerStatsView["writableLayer"] = null;
    const running = summary.vmid !== null && containerState(actor.value) === "CONTAINER_RUNNING";
    const usage = running && this.#processes !== undefined
      ? await this.#processes.usage(summary.vmid!)
      : undefined;
    if (usage !== undefined) {
      // The CT's own cgroup: what the kernel counted, not Proxmox's sampled view.
      cpuNs = usage.cpuUsageNs;
      memory = usage.memoryWorkingSetBytes;
      if (usage.memoryLimitBytes !== undefined) {
        available = String(Math.max(0, usage.memoryLimitBytes - memory));
      }
      if (usage.rootfs !== undefined) {
        writableLayer = {
          mountpoint: usage.rootfs.mountpoint,
          usedBytes: String(usage.rootfs.usedBytes),
          inodesUsed: String(usage.rootfs.inodesUsed),
        };
      }
    } else if (running) {
      const status = await this.#api.ctStatus({ vmid: summary.vmid! });
      cpuNs = this.#cpu.sample(id, now, Number(status.cpu ?? 0) * Number(status.cpus ?? 1));
      memory = Number(status.mem ?? 0);
      if (typeof status.maxmem === "number") {
        available = String(Math.max(0, status.maxmem - memory));
      }
    }
    return {
      id,
      sandboxId: summary.sandboxId,
      spec: {
        name: summary.name,
        attempt: summary.attempt,
        labels: summary.labels,
        annotations: summary.annotations,
      },
      timestamp: now,
      cpuUsageCoreNanoSeconds: cpuNs.toString(),
      memoryWorkingSetBytes: String(memory),
      memoryAvailableBytes: available,
      writableLayer,
    };
  }

  onContainerEvent(listener: (event: ContainerLifecycleEvent) => void): () => void {
    // What the subscriber knows already: only changes from here on are events.
    const reported = new Map<string, ContainerEventType>();
    for (const actor of this.#registry.actors("container")) {
      const type = eventTypeOf(actor.value);
      if (type !== undefined) reported.set(actor.stream, type);
    }
    return this.#registry.store.subscribe((events) => {
      const touched = new Set(events.filter((e) => e.kind === "container").map((e) => e.stream));
      for (const id of touched) {
        const actor = this.#containerActor(id);
        // Listeners run at commit, before the registry drops a stream that reached its end.
        const gone = actor === undefined || machines.container.isFinal(actor.value);
        const type = gone
          ? (reported.has(id) ? "CONTAINER_DELETED_EVENT" : undefined)
          : eventTypeOf(actor.value);
        if (type === undefined || reported.get(id) === type) continue;
        if (type === "CONTAINER_DELETED_EVENT") reported.delete(id);
        else reported.set(id, type);
        const view = gone ? undefined : this.container(id);
        const sandboxId = view?.sandboxId ?? actor?.summary.sandboxId;
        try {
          listener({
            containerId: id,
            type,
            time: events.at(-1)!.time,
            sandbox: sandboxId === undefined ? null : this.sandbox(sandboxId) ?? null,
            containers: view === undefined ? [] : [view],
          });
        } catch (error) {
          this.#log.warn("container event listener failed", { error: String(error) });
        }
      }
    });
  }

  async pullImage(reference: string, call: CallInfo, options?: PullOptions): Promise<ImageView> {
    return await this.#images.pull(reference, call, options);
  }

  async importImage(path: string, call: CallInfo, options?: ImportOptions): Promise<ImageView> {
    return await this.#images.importArchive(path, call, options);
  }

  images(): Promise<ImageView[]> {
    return Promise.resolve(this.#images.list());
  }

  image(reference: string): Promise<ImageView | undefined> {
    return Promise.resolve(this.#images.find(reference));
  }

  imageInfo(id: string): Promise<Record<string, unknown>> {
    return this.#images.info(id);
  }

  async removeImage(reference: string, call: CallInfo): Promise<void> {
    await this.#images.remove(reference, call);
  }

  imageFsInfo() {
    return Promise.resolve({ timestamp: Date.now(), ...this.#images.fsInfo() });
  }

  #sandboxActor(id: string): SandboxActor | undefined {
    const actor = this.#registry.get(id);
    return actor?.kind === "sandbox" ? actor as SandboxActor : undefined;
  }

  async execSync(
    id: string,
    request: { cmd: string[]; timeoutSeconds: number },
    call: CallInfo,
  ): Promise<{ stdout: Uint8Array; stderr: Uint8Array; exitCode: number }> {
    const actor = this.#runningContainer(id, "ExecSync");
    if (request.cmd.length === 0) {
      throw new InvalidArgumentError("cmd is empty", { details: { field: "cmd" } });
    }
    const processes = this.#processes!;
    const context = actor.state.context;
    const spec = context.config as ContainerSpec;
    const image = this.#images.specOf(context.imageId ?? "");
    const started = Date.now();
    const result = await processes.exec({
      vmid: context.vmid!,
      argv: request.cmd,
      env: mergeEnv(image?.env ?? [], context.envs),
      user: spec.user || image?.user || "",
      workingDir: spec.workingDir || image?.workingDir || "",
      timeoutSeconds: request.timeoutSeconds,
      ...(call.signal === undefined ? {} : { signal: call.signal }),
    });
    // The command is recorded, never its output: it may hold anything.
    if (actor.value === "running") {
      await this.#registry.commit([{
        actor,
        events: [{
          type: "ExecFinished",
          data: {
            command: request.cmd.slice(0, 1),
            exitCode: result.exitCode,
            durationMs: Date.now() - started,
            timedOut: result.timedOut,
          },
        }],
        meta: call.meta,
      }]).catch(() => undefined);
    }
    if (result.timedOut) {
      throw new DeadlineExceededError(
        `ExecSync in container "${id}" timed out after ${request.timeoutSeconds}s`,
        { details: { container_id: id } },
      );
    }
    return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode };
  }

  async reopenContainerLog(id: string): Promise<void> {
    this.#runningContainer(id, "ReopenContainerLog");
    await this.#processes!.reopenLog(id);
  }

  /** A running container of a backend with a real process plane, or the CRI's error. */
  #runningContainer(id: string, method: string): ContainerActor {
    if (this.#processes === undefined) {
      throw new RuntimeError("Unimplemented", `${method} needs a real backend (lxc or proxmox)`);
    }
    const actor = this.#containerActor(id);
    if (actor === undefined) {
      throw new NotFoundError(`Container "${id}" not found`, { details: { container_id: id } });
    }
    if (actor.value !== "running") {
      throw new FailedPreconditionError(`Container "${id}" is not running (${actor.value})`, {
        details: { container_id: id, state: actor.value },
      });
    }
    return actor;
  }

  /** A container as the CRI sees it: one whose removal is under way is gone already. */
  #containerActor(id: string): ContainerActor | undefined {
    const actor = this.#anyContainerActor(id);
    return actor === undefined || commands.removalUnderway.has(actor.value) ? undefined : actor;
  }

  #anyContainerActor(id: string): ContainerActor | undefined {
    const actor = this.#registry.get(id);
    return actor?.kind === "container" ? actor as ContainerActor : undefined;
  }

  #options(call: CallInfo): commands.CommandOptions {
    return call.signal === undefined
      ? { meta: call.meta }
      : { meta: call.meta, signal: call.signal };
  }
}

function eventTypeOf(phase: string): ContainerEventType | undefined {
  switch (containerState(phase)) {
    case "CONTAINER_CREATED":
      return "CONTAINER_CREATED_EVENT";
    case "CONTAINER_RUNNING":
      return "CONTAINER_STARTED_EVENT";
    case "CONTAINER_EXITED":
      return "CONTAINER_STOPPED_EVENT";
    default:
      return undefined;
  }
}

/**
 * The error a caller gets for a step that failed: the recorded failure's code (Internal when
 * it had none), what failed, and why.
 */
function stepFailure(
  error: StepError | null,
  what: string,
  details: Record<string, unknown>,
): RuntimeError {
  const code = (error?.code as RuntimeError["code"] | undefined) ?? "Internal";
  const why = error === null ? "no detail recorded" : `${error.event}: ${error.error}`;
  return new RuntimeError(code, `${what}: ${why}`, { details });
}

/** 64 hex characters, as containerd and CRI-O make ids. */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The list item made from an actor's current summary, made once per summary. */
function itemOf<S extends object, I>(
  items: WeakMap<S, I>,
  actor: { stream: string; summary: S },
  make: (id: string, summary: S) => I,
): I {
  let item = items.get(actor.summary);
  if (item === undefined) {
    item = make(actor.stream, actor.summary);
    items.set(actor.summary, item);
  }
  return item;
}
