/**
 * The CRI's mutations as commands on streams. Each one waits for its stream to settle, then
 * decides from the settled state; a command that spans streams is decided by the owner (the
 * sandbox admits its containers), so CreateContainer racing StopPodSandbox has one winner.
 */
import { FailedPreconditionError, NotFoundError } from "../lib/errors.ts";
import type { EventMeta } from "../store/mod.ts";
import type { FoldState } from "./compiled_machine.ts";
import type { ContainerContext, HookSpec, ResourceLimits } from "./container_context.ts";
import { machines } from "./fold.ts";
import type { Registry } from "./registry.ts";
import type { NewEvent } from "./events.ts";
import type { NetworkAttachment, PodMetadata, SandboxContext } from "./sandbox_context.ts";
import type { StreamActor } from "./stream_actor.ts";

export type SandboxState = FoldState<SandboxContext>;
export type ContainerState = FoldState<ContainerContext>;

export interface CommandOptions {
  /** Who asked: stored with the events (CRI method, request id). */
  meta?: EventMeta;
  /** The caller gave up: stop waiting (the work itself goes on). */
  signal?: AbortSignal;
}

function settled(actor: StreamActor, signal?: AbortSignal) {
  return actor.until((s) => machines[actor.kind].isSettled(s.value), signal);
}

export interface RunPodSandbox {
  id: string;
  metadata: PodMetadata;
  networks: NetworkAttachment[];
  runtimeHandler: string;
  config: unknown;
}

/** Records the sandbox and waits until it is ready (or failed and rolled back). */
export async function runPodSandbox(
  registry: Registry,
  command: RunPodSandbox,
  options: CommandOptions = {},
): Promise<SandboxState> {
  const actor = registry.newActor("sandbox", command.id);
  const { id: _, ...data } = command;
  await registry.commit([
    { actor, events: [{ type: "SandboxRequested", data }], meta: options.meta ?? {} },
  ]);
  return actor.enqueue(() => settled(actor, options.signal)) as Promise<SandboxState>;
}

/** Stops the sandbox; an unknown (already removed) sandbox is not an error. */
export function stopPodSandbox(
  registry: Registry,
  id: string,
  options: CommandOptions = {},
): Promise<SandboxState | undefined> {
  return onSandbox(registry, id, options, "SandboxStopRequested");
}

/** Stops (if needed) and removes the sandbox and its containers. */
export function removePodSandbox(
  registry: Registry,
  id: string,
  options: CommandOptions = {},
): Promise<SandboxState | undefined> {
  return onSandbox(registry, id, options, "SandboxRemoveRequested");
}

async function onSandbox(
  registry: Registry,
  id: string,
  options: CommandOptions,
  type: "SandboxStopRequested" | "SandboxRemoveRequested",
): Promise<SandboxState | undefined> {
  const actor = registry.get(id) as StreamActor<SandboxContext> | undefined;
  if (actor?.kind !== "sandbox") return undefined;
  return await actor.enqueue(async () => {
    const state = await settled(actor, options.signal) as SandboxState;
    if (machines.sandbox.isFinal(state.value)) return undefined;
    // Where the machine takes the request (a stopped sandbox takes no stop: nothing to do).
    if (!machines.sandbox.eventsOf(state.value).includes(type)) return state;
    await registry.commit([{ actor, events: [{ type, data: {} }], meta: options.meta ?? {} }]);
    return await settled(actor, options.signal) as SandboxState;
  });
}

export interface CreateContainer {
  id: string;
  sandboxId: string;
  metadata: { name: string; attempt: number };
  image: string;
  /** The image as the caller already found it: recorded with the request, not looked up after. */
  resolvedImage?: { imageId: string; template: string };
  envs: { key: string; value: string }[];
  hooks: HookSpec[];
  config: unknown;
}

/**
 * Admits the container into its sandbox and records it (with its image, when the caller
 * resolved it), in one transaction, then waits until it is created (or failed and rolled back).
 */
export async function createContainer(
  registry: Registry,
  command: CreateContainer,
  options: CommandOptions = {},
): Promise<ContainerState> {
  const sandbox = registry.get(command.sandboxId) as StreamActor<SandboxContext> | undefined;
  if (sandbox?.kind !== "sandbox") {
    throw new NotFoundError(`Sandbox "${command.sandboxId}" not found`, {
      details: { sandbox_id: command.sandboxId },
    });
  }
  const meta = options.meta ?? {};
  const container = await sandbox.enqueue(async () => {
    const state = await settled(sandbox, options.signal);
    if (state.value !== "ready") {
      throw new FailedPreconditionError(
        `Sandbox "${sandbox.stream}" is ${state.value}, not ready: no new containers`,
        { details: { sandbox_id: sandbox.stream, state: state.value } },
      );
    }
    const actor = registry.newActor("container", command.id);
    const { id, metadata, resolvedImage, ...rest } = command;
    const events: NewEvent[] = [{ type: "ContainerRequested", data: { metadata, ...rest } }];
    if (resolvedImage !== undefined) events.push({ type: "ImageResolved", data: resolvedImage });
    await registry.commit([
      {
        actor: sandbox,
        events: [{
          type: "ContainerAdmitted",
          data: { containerId: id, name: metadata.name, attempt: metadata.attempt },
        }],
        meta,
      },
      { actor, events, meta },
    ]);
    return actor;
  });
  return await container.enqueue(() => settled(container, options.signal)) as ContainerState;
}

/** The states of a start that is recorded and not yet settled. */
const startUnderway: ReadonlySet<string> = new Set(["startingCt", "poststartHooks"]);

/** Starts a created container; its sandbox must be ready. */
export async function startContainer(
  registry: Registry,
  id: string,
  options: CommandOptions = {},
): Promise<ContainerState> {
  const actor = containerActor(registry, id);
  if (actor === undefined) {
    throw new NotFoundError(`Container "${id}" not found`, { details: { container_id: id } });
  }
  // A retry of a call that gave up at its deadline joins the start that call recorded.
  const joining = startUnderway.has(actor.value);
  return await actor.enqueue(async () => {
    const state = await settled(actor, options.signal) as ContainerState;
    if (machines.container.isFinal(state.value)) {
      throw new NotFoundError(`Container "${id}" not found`, { details: { container_id: id } });
    }
    if (joining && state.value !== "created") return state;
    if (state.value !== "created") {
      throw new FailedPreconditionError(`Container "${id}" is ${state.value}, not created`, {
        details: { container_id: id, state: state.value },
      });
    }
    const sandbox = registry.get(state.context.sandboxId);
    if (sandbox?.value !== "ready") {
      throw new FailedPreconditionError(
        `Sandbox "${state.context.sandboxId}" of container "${id}" is not ready`,
        { details: { container_id: id, sandbox_id: state.context.sandboxId } },
      );
    }
    await registry.commit([
      { actor, events: [{ type: "ContainerStartRequested", data: {} }], meta: options.meta ?? {} },
    ]);
    return await settled(actor, options.signal) as ContainerState;
  });
}

/**
 * Stops a running container: SIGTERM, then SIGKILL after `timeoutSeconds`. Anything not
 * running is left as it is; an unknown container is not an error.
 */
export async function stopContainer(
  registry: Registry,
  id: string,
  timeoutSeconds: number,
  options: CommandOptions = {},
): Promise<ContainerState | undefined> {
  const actor = containerActor(registry, id);
  if (actor === undefined) return undefined;
  return await actor.enqueue(async () => {
    // A container whose removal is under way is stopped already: no waiting for its destroy.
    const state = await actor.until(
      (s) => machines.container.isSettled(s.value) || removalUnderway.has(s.value),
      options.signal,
    ) as ContainerState;
    if (machines.container.isFinal(state.value)) return undefined;
    if (state.value !== "running") return state;
    const data = { timeoutSeconds: Math.max(0, Math.trunc(timeoutSeconds)) };
    await registry.commit([
      { actor, events: [{ type: "ContainerStopRequested", data }], meta: options.meta ?? {} },
    ]);
    return await settled(actor, options.signal) as ContainerState;
  });
}

/** Removes a container, killing it first if it runs; an unknown one is not an error. */
export function removeContainer(
  registry: Registry,
  id: string,
  options: CommandOptions = {},
): Promise<ContainerState | undefined> {
  return remove(registry, id, options, (phase) => machines.container.isSettled(phase));
}

/** The states of a removal that is recorded and under way: the container is stopped. */
export const removalUnderway: ReadonlySet<string> = new Set(["removing", "poststopHooks"]);

/**
 * RemoveContainer: records the removal and answers once the container is stopped and its
 * removal under way (or failed); the CT's destroy finishes behind the answer, resumed after a
 * crash like any effect, as containerd's snapshots go in its GC. A sandbox's removal waits for
 * the end (removeContainer).
 */
export function requestContainerRemoval(
  registry: Registry,
  id: string,
  options: CommandOptions = {},
): Promise<ContainerState | undefined> {
  return remove(
    registry,
    id,
    options,
    (phase) => removalUnderway.has(phase) || machines.container.isSettled(phase),
  );
}

async function remove(
  registry: Registry,
  id: string,
  options: CommandOptions,
  done: (phase: string) => boolean,
): Promise<ContainerState | undefined> {
  const actor = containerActor(registry, id);
  if (actor === undefined) return undefined;
  return await actor.enqueue(async () => {
    const state = await actor.until((s) => done(s.value), options.signal) as ContainerState;
    if (machines.container.isFinal(state.value)) return undefined;
    if (!["created", "running", "exited", "removeFailed"].includes(state.value)) return state;
    await registry.commit([
      { actor, events: [{ type: "ContainerRemoveRequested", data: {} }], meta: options.meta ?? {} },
    ]);
    return await actor.until((s) => done(s.value), options.signal) as ContainerState;
  });
}

function containerActor(registry: Registry, id: string): StreamActor<ContainerContext> | undefined {
  const actor = registry.get(id);
  return actor?.kind === "container" ? actor as StreamActor<ContainerContext> : undefined;
}

/**
 * The node saw a container's process end on its own. Recorded if the container is one that
 * runs; a late or duplicate report is ignored. Not queued behind commands: a StopContainer
 * may be waiting for exactly this.
 */
export async function observeContainerExit(
  registry: Registry,
  id: string,
  exit: { exitCode: number; reason: string; message?: string; finishedAt: number },
): Promise<boolean> {
  const actor = containerActor(registry, id);
  if (actor === undefined) return false;
  if (!machines.container.eventsOf(actor.value).includes("ContainerExited")) return false;
  await registry.commit([{
    actor,
    events: [{ type: "ContainerExited", data: exit }],
    meta: { cause: "node" },
  }]);
  return true;
}

export type AdoptSandbox = Extract<NewEvent, { type: "SandboxAdopted" }>["data"] & {
  id: string;
};

/**
 * Takes back a pod whose stream the log lost, as its containers' CTs name it: NotReady, for
 * them to be adopted into. Refused (thrown) when the log knows the stream (removed or live).
 */
export async function adoptSandbox(registry: Registry, command: AdoptSandbox): Promise<void> {
  if (registry.get(command.id) !== undefined || registry.store.streamInfo(command.id)) {
    throw new FailedPreconditionError(`Sandbox "${command.id}" is in the log: not adopted`);
  }
  const { id, ...data } = command;
  await registry.commit([{
    actor: registry.newActor("sandbox", id),
    events: [{ type: "SandboxAdopted", data }],
    meta: { cause: "reconcile" },
  }]);
}

export type AdoptContainer = Extract<NewEvent, { type: "ContainerAdopted" }>["data"] & {
  id: string;
};

/**
 * Takes back a container whose stream the log lost (its CT names it): admitted into its
 * sandbox, which must be ready (or adopted itself) and must not hold the name, and recorded in
 * the state its CT is in. Refused (thrown) otherwise; the CT is then left to the orphan rule.
 */
export async function adoptContainer(registry: Registry, command: AdoptContainer): Promise<void> {
  const sandbox = registry.get(command.sandboxId) as StreamActor<SandboxContext> | undefined;
  if (sandbox?.kind !== "sandbox") {
    throw new NotFoundError(`Sandbox "${command.sandboxId}" not found`);
  }
  const meta = { cause: "reconcile" };
  await sandbox.enqueue(async () => {
    const state = await settled(sandbox);
    if (state.value !== "ready" && state.value !== "adopted") {
      throw new FailedPreconditionError(`Sandbox "${sandbox.stream}" is ${state.value}`);
    }
    const { id, ...data } = command;
    const actor = registry.newActor("container", id);
    await registry.commit([
      {
        actor: sandbox,
        events: [{
          type: "ContainerAdmitted",
          data: { containerId: id, name: data.metadata.name, attempt: data.metadata.attempt },
        }],
        meta,
      },
      { actor, events: [{ type: "ContainerAdopted", data }], meta },
    ]);
  });
}

/**
 * Reconciliation found a ready sandbox's pinned namespaces gone: recorded (it is NotReady).
 * A sandbox in any other state is not changed.
 */
export async function observeNamespacesLost(
  registry: Registry,
  id: string,
  missing: string[],
): Promise<boolean> {
  return await observeLoss(registry, id, "NamespacesLost", missing);
}

/** Records that a ready sandbox's pod network interfaces are gone; false if not ready. */
export async function observeNetworkLost(
  registry: Registry,
  id: string,
  missing: string[],
): Promise<boolean> {
  return await observeLoss(registry, id, "NetworkLost", missing);
}

async function observeLoss(
  registry: Registry,
  id: string,
  type: "NamespacesLost" | "NetworkLost",
  missing: string[],
): Promise<boolean> {
  const actor = registry.get(id);
  if (actor?.kind !== "sandbox") return false;
  if (!machines.sandbox.eventsOf(actor.value).includes(type)) return false;
  await registry.commit([{
    actor,
    events: [{ type, data: { missing } }],
    meta: { cause: "reconcile" },
  }]);
  return true;
}

/**
 * Changes a created or running container's limits (Proxmox applies them live) and waits for
 * the result. Anything else has no CT limits to change.
 */
export async function updateContainerResources(
  registry: Registry,
  id: string,
  resources: ResourceLimits,
  options: CommandOptions = {},
): Promise<ContainerState> {
  const actor = containerActor(registry, id);
  if (actor === undefined) {
    throw new NotFoundError(`Container "${id}" not found`, { details: { container_id: id } });
  }
  return await actor.enqueue(async () => {
    const state = await settled(actor, options.signal) as ContainerState;
    if (state.value !== "created" && state.value !== "running") {
      throw new FailedPreconditionError(
        `Container "${id}" is ${state.value}: only created or running containers have limits`,
        { details: { container_id: id, state: state.value } },
      );
    }
    await registry.commit([{
      actor,
      events: [{ type: "ContainerResourcesRequested", data: { resources } }],
      meta: options.meta ?? {},
    }]);
    const after = await actor.until(
      (s) => !s.context.resourcesPending || !["created", "running"].includes(s.value),
      options.signal,
    ) as ContainerState;
    if (after.context.lastError?.event === "ContainerResourcesUpdateFailed") {
      throw new FailedPreconditionError(
        `Updating the resources of container "${id}" failed: ${after.context.lastError.error}`,
        { details: { container_id: id } },
      );
    }
    return after;
  });
}
