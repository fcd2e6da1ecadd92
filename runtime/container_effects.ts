/**
 * The container's effects bound to Proxmox (the control plane), the node (the process plane),
 * hooks and images. Each is idempotent and keyed: a VMID is recorded before the create call,
 * a task's UPID before waiting on it, and a resumed effect checks what Proxmox already did
 * before calling again. A CT is only ever touched when its description says it is ours.
 */
import {
  HookFailedError,
  type HookOutcome,
  type HookRunner,
  type RunInContainer,
} from "../adapters/hooks/mod.ts";
import type { ExitStatus, NodeAdapter, ProcessSpec } from "../adapters/node/mod.ts";
import {
  type ProxmoxApi,
  PveAlreadyExistsError,
  PveAlreadyRunningError,
  PveLockedError,
  PveNotFoundError,
  PveNotRunningError,
} from "../adapters/proxmox/mod.ts";
import {
  errorMessage,
  InternalError,
  NotFoundError,
  ResourceExhaustedError,
} from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import {
  type ContainerContext,
  hooksOfStage,
  type HookStage,
} from "../machines/container_context.ts";
import type { AdapterEffectHandlers, EffectInput } from "../machines/effects.ts";
import type { NewEvent } from "../machines/events.ts";
import type { ContainerSpec, ImageSpec, ImageView, PodMetadata } from "./api.ts";
import { type CtAdoption, ctDescription, ctTags, identityOf } from "./ct_identity.ts";
import { mergeEnv, processArgv } from "./container_env.ts";
import { proxmoxLimits } from "./limits.ts";

export interface SandboxFacts {
  metadata: PodMetadata;
  hostname: string;
  /** The pod's pinned namespaces (kind → file); empty for a host-namespace pod. */
  namespaces: Record<string, string>;
}

/** What container effects need of the images. */
export interface ImageLookup {
  require(referenceOrId: string): ImageView;
  specOf(imageId: string): ImageSpec | undefined;
}

export interface ContainerEffectDeps {
  api: ProxmoxApi;
  node: NodeAdapter;
  hooks: HookRunner;
  images: ImageLookup;
  /** Storage for the CT's root filesystem, and its size in GiB. */
  rootfs: { storage: string; sizeGiB: number };
  sandbox(id: string): SandboxFacts | undefined;
  /** VMIDs this runtime's containers hold (recorded in their streams). */
  vmidsInUse(): Set<number>;
  /**
   * Waits until the removals under way now have ended (their VMIDs are free again); false at
   * once when there are none.
   */
  removalsEnded(signal: AbortSignal): Promise<boolean>;
  log: Logger;
  /** The CRI log file of a container ("" when it has none). */
  logPathOf(context: ContainerContext): string;
  /** Extra time after a grace period before pve-cri kills a CT Proxmox has not stopped. */
  killBackstopMs?: number;
}

type Input = EffectInput<ContainerContext>;

/** Whose CT a VMID is: our container id, another id, or undefined when there is no CT. */
async function ownerOf(api: ProxmoxApi, vmid: number): Promise<string | null | undefined> {
  try {
    const config = await api.ctConfig({ vmid });
    return identityOf(config.description)?.containerId ?? null;
  } catch (error) {
    if (error instanceof PveNotFoundError) return undefined;
    throw error;
  }
}

/** Waits for the task the stream recorded, when the current step is that operation. */
async function resumeTask(api: ProxmoxApi, input: Input, operation: string): Promise<boolean> {
  const task = input.context.task;
  if (task === null || task.operation !== operation) return false;
  await api.waitForTask(task.upid, { signal: input.signal });
  return true;
}

/**
 * Starts a task and records its UPID. Waiting only reads the task's status, so it begins while
 * the UPID is being committed; nothing acts on the outcome before both are done.
 */
async function runTask(
  api: ProxmoxApi,
  input: Input,
  operation: string,
  start: () => Promise<string>,
): Promise<void> {
  const upid = await start();
  const [recorded, finished] = await Promise.allSettled([
    input.emit({ type: "PveTaskStarted", data: { upid, operation } }),
    api.waitForTask(upid, { signal: input.signal }),
  ]);
  if (recorded.status === "rejected") throw recorded.reason;
  if (finished.status === "rejected") throw finished.reason;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** What the CT's description carries to rebuild this container if its stream is lost. */
function adoptionOf(context: ContainerContext): CtAdoption {
  const { envs: _, ...config } = specOf(context);
  return {
    image: context.image,
    imageId: context.imageId ?? "",
    template: context.template ?? "",
    createdAt: context.createdAt,
    config,
  };
}

function specOf(context: ContainerContext): ContainerSpec {
  return context.config as ContainerSpec;
}

export function containerEffects(deps: ContainerEffectDeps): AdapterEffectHandlers["container"] {
  const { api, node, hooks, images, log } = deps;
  const backstop = deps.killBackstopMs ?? 5000;
  /** VMIDs handed out and not yet recorded: concurrent creates must not get the same one. */
  const allocating = new Set<number>();
  /** Where the next local allocation starts; unknown until Proxmox is asked (and after a clash). */
  let nextCandidate: number | undefined;
  /** The cluster's `next-id` range, asked once: counting up must not leave it. */
  let range: Promise<{ lower: number; upper: number }> | undefined;

  /**
   * Proxmox's nextid has no reservation: every concurrent caller gets the same lowest free id.
   * So pve-cri asks it once, then counts up past the ids it holds or is handing out; the create
   * call settles races with other clients of the cluster, and a clash makes it ask again.
   */
  const allocate = async (input: Input, clashed = false): Promise<number> => {
    try {
      return await allocateOnce(input, clashed);
    } catch (error) {
      // RemoveContainer answers before the CT is gone: a full range may be freeing up.
      if (!(error instanceof ResourceExhaustedError)) throw error;
      if (!(await deps.removalsEnded(input.signal))) throw error;
      return await allocateOnce(input, true);
    }
  };

  const allocateOnce = async (input: Input, clashed: boolean): Promise<number> => {
    range ??= api.vmidRange().catch((error) => {
      range = undefined;
      throw error;
    });
    const { upper } = await range;
    if (clashed || nextCandidate === undefined) nextCandidate = await api.nextVmid();
    const inUse = deps.vmidsInUse();
    let vmid = nextCandidate;
    while (inUse.has(vmid) || allocating.has(vmid)) vmid++;
    if (vmid >= upper) {
      // Past the range's end: Proxmox knows what is free below it (or that nothing is).
      vmid = await api.nextVmid();
      while (inUse.has(vmid) || allocating.has(vmid)) vmid++;
      if (vmid >= upper) {
        throw new ResourceExhaustedError(
          `no free VMID in the cluster's next-id range below ${upper}: every one is in use`,
        );
      }
    }
    nextCandidate = vmid + 1;
    allocating.add(vmid);
    try {
      await input.emit({ type: "VmidAllocated", data: { vmid } });
    } finally {
      allocating.delete(vmid);
    }
    return vmid;
  };

  /**
   * The exit the process's monitor recorded. When the CT is gone or stopped with no record
   * (deleted behind pve-cri's back, a dead monitor), the reason is Unknown.
   */
  const processExit = async (input: Input): Promise<NewEvent> => {
    const status = await node.processes!.waitExit(input.context.id, input.signal);
    return exitEvent(status);
  };

  const exited = async (vmid: number, how: "stopped" | "killed" | "exited"): Promise<NewEvent> => {
    return exitEvent(await node.exitStatus!(vmid, how));
  };

  const exitEvent = (status: ExitStatus): NewEvent => {
    return {
      type: "ContainerExited",
      data: {
        exitCode: status.exitCode,
        reason: status.reason,
        finishedAt: status.finishedAt,
        ...(status.message === undefined ? {} : { message: status.message }),
      },
    };
  };

  const stopSignalOf = (context: ContainerContext): string =>
    images.specOf(context.imageId ?? "")?.stopSignal || "SIGTERM";

  /** The image's env: from the image record, or from the CT when the image was removed since. */
  const imageEnv = async (context: ContainerContext): Promise<string[]> =>
    images.specOf(context.imageId ?? "")?.env ??
      ((await api.ctConfig({ vmid: context.vmid! })).env ?? "").split("\0");

  /** The app as the CRI and the image define it (containerd's rules for command and args). */
  const processSpec = async (context: ContainerContext): Promise<ProcessSpec> => {
    const spec = specOf(context);
    const image = images.specOf(context.imageId ?? "");
    const argv = processArgv(spec, image);
    return {
      containerId: context.id,
      vmid: context.vmid!,
      argv,
      env: mergeEnv(await imageEnv(context), context.envs),
      user: spec.user || image?.user || "",
      workingDir: spec.workingDir || image?.workingDir || "",
      logPath: deps.logPathOf(context),
    };
  };

  const destroyCt = async (input: Input): Promise<NewEvent> => {
    const { context } = input;
    const vmid = context.vmid;
    if (vmid === null) return { type: "CtDestroyed", data: {} };
    if (await resumeTask(api, input, "destroy")) return { type: "CtDestroyed", data: {} };
    for (let attempt = 0;; attempt++) {
      const owner = await ownerOf(api, vmid);
      if (owner === undefined) return { type: "CtDestroyed", data: {} };
      if (owner !== context.id) {
        log.warn("not destroying a CT pve-cri does not own", { container_id: context.id, vmid });
        return { type: "CtDestroyed", data: {} };
      }
      try {
        await runTask(
          api,
          input,
          "destroy",
          () => api.destroyCt({ vmid, force: true, purge: true }),
        );
        return { type: "CtDestroyed", data: {} };
      } catch (error) {
        // A create still running (a resumed rollback) holds the lock: wait for it.
        if (error instanceof PveLockedError && error.lock === "create" && attempt < 50) {
          await sleep(200, input.signal);
          continue;
        }
        if (error instanceof PveNotFoundError) return { type: "CtDestroyed", data: {} };
        throw error;
      }
    }
  };

  /** The OCI state a hook reads on stdin. */
  const ociState = (context: ContainerContext, status: string, pid?: number) => ({
    ociVersion: "1.0.2",
    id: context.id,
    status,
    ...(pid === undefined ? {} : { pid }),
    bundle: node.processes?.bundleOf(context.id) ?? "",
    annotations: specOf(context).annotations ?? {},
  });

  /**
   * Runs the stage's hooks not yet done, each between HookStarted and HookFinished/HookFailed.
   * A fatal stage stops at a failure and returns its HookFailed for the caller to act on.
   */
  const runStage = async (
    input: Input,
    stage: HookStage,
    state: ReturnType<typeof ociState>,
    inContainer?: RunInContainer,
  ): Promise<NewEvent | undefined> => {
    const fatal = stage === "start";
    for (const hook of hooksOfStage(input.context, stage)) {
      if (input.context.hooksDone.includes(hook.name)) continue;
      await input.emit({
        type: "HookStarted",
        data: { stage, name: hook.name, ...(state.pid === undefined ? {} : { pid: state.pid }) },
      });
      let outcome: HookOutcome;
      try {
        outcome = await hooks.run(hook, state, {
          signal: input.signal,
          // After the CT is destroyed (poststop) its directory on the node is gone too.
          ...(isDirectory(state.bundle) ? { cwd: state.bundle } : {}),
          ...(hook.phase === "startContainer" && inContainer !== undefined ? { inContainer } : {}),
        });
      } catch (error) {
        const failed: NewEvent = {
          type: "HookFailed",
          data: {
            stage,
            name: hook.name,
            error: error instanceof Error ? error.message : String(error),
            ...(error instanceof HookFailedError ? outcomeData(error.outcome) : {}),
          },
        };
        if (fatal) return failed;
        log.warn("an OCI hook failed", { container_id: input.stream, hook: hook.name });
        await input.emit(failed);
        continue;
      }
      await input.emit({
        type: "HookFinished",
        data: { stage, name: hook.name, ...outcomeData(outcome) },
      });
    }
    return undefined;
  };

  /** poststart (given the app's pid) and poststop: failures are warnings (OCI). */
  const runHooks = async (input: Input): Promise<NewEvent> => {
    const stage = input.params?.stage as HookStage;
    const state = stage === "poststart"
      ? ociState(input.context, "running", input.context.pid ?? undefined)
      : ociState(input.context, "stopped");
    await runStage(input, stage, state);
    return { type: "HooksCompleted", data: { stage } };
  };

  /**
   * The `start` stage, once the CT runs and before the app: given the CT's init (in the
   * container's namespaces); startContainer hooks run in the CT. A failure destroys the CT.
   */
  const startHooks = async (input: Input): Promise<NewEvent | undefined> => {
    if (hooksOfStage(input.context, "start").length === 0) return undefined;
    const vmid = input.context.vmid!;
    const processes = node.processes;
    const initPid = await processes?.initPid(vmid);
    const failed = await runStage(
      input,
      "start",
      ociState(input.context, "created", initPid),
      processes === undefined ? undefined : (request) =>
        processes.exec({
          vmid,
          argv: request.argv,
          env: request.env,
          user: "",
          workingDir: "",
          timeoutSeconds: request.timeoutSeconds,
          signal: request.signal,
          stdin: request.stdin,
        }),
    );
    if (failed === undefined) return undefined;
    await input.emit(failed);
    // The CT goes at once, since nothing of it is used again; the
    // container stays EXITED, as the CRI expects after a failed start, until it is removed.
    try {
      await runTask(api, input, "destroy", () => api.destroyCt({ vmid, force: true, purge: true }));
    } catch (error) {
      if (!(error instanceof PveNotFoundError)) throw error;
    }
    await processes?.release(input.context.id);
    return {
      type: "ContainerStartFailed",
      data: { error: (failed.data as { error: string }).error, code: "FailedPrecondition" },
    };
  };

  /** Creates the CT from the image's template (or finds the one a crashed try made); its VMID. */
  const createCt = async (input: Input): Promise<number> => {
    const { context } = input;
    if (await resumeTask(api, input, "create")) return context.vmid!;
    const sandbox = deps.sandbox(context.sandboxId);
    if (sandbox === undefined) throw new NotFoundError(`Sandbox "${context.sandboxId}" is gone`);
    const identity = {
      containerId: context.id,
      sandboxId: context.sandboxId,
      podUid: sandbox.metadata.uid,
      podName: sandbox.metadata.name,
      podNamespace: sandbox.metadata.namespace,
      name: context.name,
      attempt: context.attempt,
      adoption: adoptionOf(context),
    };
    let vmid = context.vmid!;
    for (let attempt = 0;; attempt++) {
      // A create whose answer was lost (a crash) may have made the CT already; a fresh
      // first try with a VMID this process just allocated cannot have.
      const owner = attempt === 0 && !input.resumed ? undefined : await ownerOf(api, vmid);
      if (owner === context.id) return vmid;
      if (owner === undefined) {
        try {
          await runTask(api, input, "create", () =>
            api.createCt({
              vmid,
              ostemplate: context.template!,
              hostname: validHostname(sandbox.hostname) ?? `ct${vmid}`,
              rootfs: `${deps.rootfs.storage}:${deps.rootfs.sizeGiB}`,
              cmode: "console",
              ostype: "unmanaged",
              ...createLimits(specOf(context)),
              tags: ctTags(identity),
              description: ctDescription(identity),
            }));
          return vmid;
        } catch (error) {
          if (!(error instanceof PveAlreadyExistsError) || attempt >= 20) throw error;
        }
      }
      // Another client of the cluster took this VMID first: record a new one, try again.
      log.info("VMID taken, allocating another", { container_id: context.id, vmid });
      vmid = await allocate(input, true);
    }
  };

  /**
   * What a new CT gets beyond its create call: with a process plane, the include that joins
   * it to its pod and runs its idle init (MountsApplied); else the command and env as config.
   */
  const configure = async (context: ContainerContext, vmid: number): Promise<NewEvent[]> => {
    const spec = specOf(context);
    const processes = node.processes;
    if (processes === undefined) {
      const set: { env?: string[]; entrypoint?: string } = {};
      if (context.envs.length > 0) set.env = mergeEnv(await imageEnv(context), context.envs);
      if (spec.command.length > 0) {
        // PVE 9.1 overwrites a create-time entrypoint with the image's, so it is set now.
        set.entrypoint = [...spec.command, ...spec.args].map(shellQuote).join(" ");
      }
      if (set.env !== undefined || set.entrypoint !== undefined) {
        await api.updateCtConfig({ vmid, set });
      }
      return [{ type: "CtConfigured", data: {} }];
    }
    // The app gets its env from lxc-attach: values (Secrets, often) stay out of /etc/pve,
    // which every node of the cluster replicates. The CT's init idles; the app runs beside it.
    const sandbox = deps.sandbox(context.sandboxId);
    if (sandbox === undefined) throw new NotFoundError(`Sandbox "${context.sandboxId}" is gone`);
    const applied = await processes.prepareCt({
      containerId: context.id,
      sandboxId: context.sandboxId,
      vmid,
      namespaces: sandbox.namespaces,
      mounts: spec.mounts,
    });
    return [{ type: "MountsApplied", data: applied }, { type: "CtConfigured", data: {} }];
  };

  return {
    // New streams record their image with the request; a stream written before that resumes here.
    resolveImage({ context }) {
      const image = images.require(context.image);
      return Promise.resolve({
        type: "ImageResolved",
        data: { imageId: image.id, template: image.volid },
      });
    },

    async allocateVmid(input) {
      await allocate(input);
    },

    async createCt(input) {
      const vmid = await createCt(input);
      const created: NewEvent = { type: "CtCreated", data: { vmid } };
      // Configured at once, its events committed with CtCreated; on failure configureCt (the
      // state CtCreated leads to) tries again and records why.
      try {
        return [created, ...(await configure(input.context, vmid))];
      } catch (error) {
        log.debug("configuring a new CT failed; configureCt retries", {
          container_id: input.context.id,
          error: errorMessage(error),
        });
        return created;
      }
    },

    async configureCt({ context }) {
      return await configure(context, context.vmid!);
    },

    runHooks,

    async startCt(input) {
      const vmid = input.context.vmid!;
      if (!(await resumeTask(api, input, "start"))) {
        try {
          await runTask(api, input, "start", () => api.startCt({ vmid }));
        } catch (error) {
          if (!(error instanceof PveAlreadyRunningError)) throw error;
        }
      }
      const hookFailure = await startHooks(input);
      if (hookFailure !== undefined) return hookFailure;
      const processes = node.processes;
      const started = processes === undefined
        ? await node.processStarted!(vmid)
        : await processes.start(await processSpec(input.context));
      return {
        type: "ContainerStarted",
        data: {
          startedAt: started.startedAt,
          ...(started.pid === undefined ? {} : { pid: started.pid }),
        },
      };
    },

    async signalStop(input) {
      const vmid = input.context.vmid!;
      const timeout = input.context.stopTimeoutSeconds ?? 0;
      const processes = node.processes;
      if (processes !== undefined) {
        // The app's own exit code: its stop signal now, SIGKILL after the grace period.
        const signal = timeout === 0 ? "SIGKILL" : stopSignalOf(input.context);
        await processes.signal(input.context.id, signal);
        return await processExit(input);
      }
      try {
        if (!(await resumeTask(api, input, timeout === 0 ? "stop" : "shutdown"))) {
          await runTask(
            api,
            input,
            timeout === 0 ? "stop" : "shutdown",
            () =>
              timeout === 0
                ? api.stopCt({ vmid })
                : api.shutdownCt({ vmid, timeout, forceStop: true }),
          );
        }
      } catch (error) {
        if (error instanceof PveNotRunningError) return await exited(vmid, "exited");
        throw error;
      }
      return await exited(vmid, timeout === 0 ? "killed" : "stopped");
    },

    async armStopTimer({ context, signal }) {
      // Proxmox's shutdown forces the stop itself; this is the backstop if it does not.
      const deadline = context.stopRequestedAt! + (context.stopTimeoutSeconds ?? 0) * 1000 +
        backstop;
      await sleep(deadline - Date.now(), signal);
      return { type: "StopTimeoutElapsed", data: {} };
    },

    async killCt(input) {
      const vmid = input.context.vmid!;
      if (node.processes !== undefined) {
        await node.processes.signal(input.context.id, "SIGKILL");
        return await processExit(input);
      }
      try {
        if (!(await resumeTask(api, input, "kill"))) {
          await runTask(api, input, "kill", () => api.stopCt({ vmid, overruleShutdown: true }));
        }
      } catch (error) {
        if (error instanceof PveNotRunningError) return await exited(vmid, "exited");
        throw error;
      }
      return await exited(vmid, "killed");
    },

    async destroyCt(input) {
      // RemoveContainer answers without waiting for the destroy: its answer leaves first.
      await new Promise((resolve) => setTimeout(resolve, 0));
      const destroyed = await destroyCt(input);
      // What the process left on the node goes once the CT, whose config includes it, is gone.
      await node.processes?.release(input.context.id);
      return destroyed;
    },

    async updateResources({ context }) {
      const vmid = context.vmid;
      const requested = context.resourcesRequested;
      if (vmid === null || requested === null) {
        throw new InternalError(`Container "${context.id}" has no CT or no limits to apply`);
      }
      const set: { memory?: number; swap?: number; cpulimit?: number; cpuunits?: number } = {};
      if (requested.memoryMiB !== undefined) set.memory = requested.memoryMiB;
      if (requested.swapMiB !== undefined) set.swap = requested.swapMiB;
      if (requested.cpulimit !== undefined) set.cpulimit = requested.cpulimit;
      if (requested.cpuunits !== undefined) set.cpuunits = requested.cpuunits;
      if (Object.keys(set).length > 0) await api.updateCtConfig({ vmid, set });
      return { type: "ContainerResourcesUpdated", data: { resources: requested } };
    },
  };
}

/** The CRI's limits at create, in Proxmox's units (as UpdateContainerResources sets them). */
function createLimits(
  spec: ContainerSpec,
): Partial<Record<"memory" | "swap" | "cpulimit" | "cpuunits", number>> {
  if (spec.resources === null) return {};
  const limits = proxmoxLimits(spec.resources);
  return {
    ...(limits.memoryMiB === undefined ? {} : { memory: limits.memoryMiB }),
    ...(limits.swapMiB === undefined ? {} : { swap: limits.swapMiB }),
    ...(limits.cpulimit === undefined ? {} : { cpulimit: limits.cpulimit }),
    ...(limits.cpuunits === undefined ? {} : { cpuunits: limits.cpuunits }),
  };
}

function validHostname(name: string): string | undefined {
  return /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/.test(
      name,
    ) &&
      name.length <= 255
    ? name
    : undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, Math.max(0, ms));
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** A hook's outcome as its event records it. */
function outcomeData(outcome: HookOutcome) {
  return {
    ...(outcome.exitCode === null ? {} : { exitCode: outcome.exitCode }),
    ...(outcome.signal === null ? {} : { signal: outcome.signal }),
    durationMs: outcome.durationMs,
    stdout: outcome.stdout,
    stderr: outcome.stderr,
    timedOut: outcome.timedOut,
  };
}

function isDirectory(path: string): boolean {
  if (path === "") return false;
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
