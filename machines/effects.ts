/**
 * The effects the machines name, what a handler gets, and the failure event recorded when a
 * handler throws. Handlers are bound in one place (the runtime's wiring, or a test's stubs).
 */
import { errorMessage, RuntimeError } from "../lib/errors.ts";
import type { ContainerContext, HookStage } from "./container_context.ts";
import type { NewEvent } from "./events.ts";
import type { ImageContext } from "./image_context.ts";
import { lastAttached, nextNetwork, type SandboxContext } from "./sandbox_context.ts";

export const sandboxEffectNames = [
  "pinNamespaces",
  "addNetwork",
  "delNetwork",
  "unpinNamespaces",
  "stopContainers",
  "removeContainers",
] as const;

export const containerEffectNames = [
  "resolveImage",
  "allocateVmid",
  "createCt",
  "configureCt",
  "runHooks",
  "startCt",
  "signalStop",
  "armStopTimer",
  "killCt",
  "destroyCt",
  "updateResources",
] as const;

export const imageEffectNames = ["fetchContent", "storeTemplate", "removeImage"] as const;

export type SandboxEffect = (typeof sandboxEffectNames)[number];
export type ContainerEffect = (typeof containerEffectNames)[number];
export type ImageEffect = (typeof imageEffectNames)[number];

export interface EffectInput<C> {
  stream: string;
  /** The stream's context when the effect started. */
  context: C;
  params: Record<string, unknown> | undefined;
  /**
   * Records an intermediate fact (a task started, a hook started) before going on. Resolves
   * once it is stored; rejects when the stream has moved on and the fact no longer applies.
   */
  emit(event: NewEvent): Promise<void>;
  /** Aborted when the stream leaves the state this effect serves, or the registry closes. */
  signal: AbortSignal;
  /**
   * Re-run after a restart: an earlier run may have acted before the process died, so check
   * before acting (a fresh run may skip checks only a resume needs).
   */
  resumed: boolean;
}

/** Returns the result event(s); throwing records the effect's failure event instead. */
export type EffectHandler<C> = (
  input: EffectInput<C>,
) => Promise<NewEvent | readonly NewEvent[] | void>;

export interface EffectHandlers {
  sandbox: Record<SandboxEffect, EffectHandler<SandboxContext>>;
  container: Record<ContainerEffect, EffectHandler<ContainerContext>>;
  image: Record<ImageEffect, EffectHandler<ImageContext>>;
}

/** Registry-side effects: commands on other streams, decided by the owning sandbox. */
export type InternalSandboxEffect = "stopContainers" | "removeContainers";
export type AdapterEffectHandlers = {
  sandbox: Omit<EffectHandlers["sandbox"], InternalSandboxEffect>;
  container: EffectHandlers["container"];
  image: EffectHandlers["image"];
};

function failureData(error: unknown): { error: string; code?: string } {
  const message = errorMessage(error);
  return error instanceof RuntimeError ? { error: message, code: error.code } : { error: message };
}

type FailureOf<C> = (
  error: unknown,
  context: C,
  params: Record<string, unknown> | undefined,
) => NewEvent | null;

export const sandboxFailures: Record<SandboxEffect, FailureOf<SandboxContext>> = {
  pinNamespaces: (e) => ({ type: "NamespacesPinFailed", data: failureData(e) }),
  addNetwork: (e, c) => {
    const net = nextNetwork(c);
    return net ? { type: "CniAddFailed", data: { ...net, ...failureData(e) } } : null;
  },
  delNetwork: (e, c) => {
    const net = lastAttached(c);
    return net
      ? { type: "CniDelFailed", data: { name: net.name, ifname: net.ifname, ...failureData(e) } }
      : null;
  },
  unpinNamespaces: (e) => ({ type: "NamespacesUnpinFailed", data: failureData(e) }),
  stopContainers: (e) => ({ type: "ContainersStopFailed", data: failureData(e) }),
  removeContainers: (e) => ({ type: "ContainersRemoveFailed", data: failureData(e) }),
};

export const containerFailures: Record<ContainerEffect, FailureOf<ContainerContext>> = {
  resolveImage: (e) => ({ type: "ImageResolveFailed", data: failureData(e) }),
  allocateVmid: (e) => ({ type: "VmidAllocateFailed", data: failureData(e) }),
  createCt: (e, c) => ({
    type: "PveTaskFailed",
    data: { operation: "create", ...(c.task ? { upid: c.task.upid } : {}), ...failureData(e) },
  }),
  configureCt: (e) => ({ type: "CtConfigureFailed", data: failureData(e) }),
  runHooks: (e, c, params) => ({
    type: "HookFailed",
    data: {
      stage: params?.stage as HookStage,
      name: c.hookInFlight ?? "hook runner",
      error: failureData(e).error,
    },
  }),
  startCt: (e) => ({ type: "ContainerStartFailed", data: failureData(e) }),
  signalStop: (e) => ({ type: "ContainerStopFailed", data: failureData(e) }),
  armStopTimer: () => null,
  killCt: (e) => ({ type: "ContainerStopFailed", data: failureData(e) }),
  destroyCt: (e) => ({ type: "CtDestroyFailed", data: failureData(e) }),
  updateResources: (e) => ({ type: "ContainerResourcesUpdateFailed", data: failureData(e) }),
};

export const imageFailures: Record<ImageEffect, FailureOf<ImageContext>> = {
  fetchContent: (e) => ({ type: "ImageContentFailed", data: failureData(e) }),
  storeTemplate: (e) => ({ type: "ImageTemplateFailed", data: failureData(e) }),
  removeImage: (e) => ({ type: "ImageRemoveFailed", data: failureData(e) }),
};
