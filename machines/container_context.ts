/**
 * What a container stream remembers, and how each event changes it (the decider's evolve).
 */
import type { Infer } from "../lib/shape.ts";
import type { DomainEvent, hookSpec, hookStage, resourceLimits } from "./events.ts";
import type { StepError } from "./sandbox_context.ts";

export type HookSpec = Infer<typeof hookSpec>;
export type HookStage = Infer<typeof hookStage>;
export type ResourceLimits = Infer<typeof resourceLimits>;

/**
 * Which stage each OCI hook phase runs in. A CT has no process until it starts, so every hook
 * the runtime spec runs before the user's program (prestart, createRuntime, createContainer,
 * startContainer) runs at StartContainer, once the CT's init runs in its namespaces and before
 * the app is launched; poststart once the app runs; poststop once the CT is destroyed.
 */
export const stageOfPhase: Record<string, HookStage> = {
  prestart: "start",
  createRuntime: "start",
  createContainer: "start",
  startContainer: "start",
  poststart: "poststart",
  poststop: "poststop",
};

/** The order of the `start` stage's phases, as runc runs them. */
const phaseOrder = ["prestart", "createRuntime", "createContainer", "startContainer"];

export interface ContainerContext {
  id: string;
  sandboxId: string;
  name: string;
  attempt: number;
  image: string;
  imageId: string | null;
  template: string | null;
  envs: { key: string; value: string }[];
  hooks: HookSpec[];
  config: unknown;
  vmid: number | null;
  /** The Proxmox task being waited on: after a crash, poll it instead of calling again. */
  task: { upid: string; operation: string } | null;
  /** Hooks of the current stage that finished, and the one started but not finished. */
  hooksDone: string[];
  hookInFlight: string | null;
  warnings: string[];
  createdAt: number;
  startedAt: number | null;
  /** The app's host pid while it runs (poststart hooks are given it). */
  pid: number | null;
  finishedAt: number | null;
  exitCode: number | null;
  reason: string;
  message: string;
  stopRequestedAt: number | null;
  stopTimeoutSeconds: number | null;
  removeRequested: boolean;
  /** Limits applied by UpdateContainerResources, and whether an update is in flight. */
  resources: ResourceLimits | null;
  /** The limits asked for while an update is in flight. */
  resourcesRequested: ResourceLimits | null;
  resourcesPending: boolean;
  lastError: StepError | null;
  leaks: string[];
}

export function initialContainerContext(id: string): ContainerContext {
  return {
    id,
    sandboxId: "",
    name: "",
    attempt: 0,
    image: "",
    imageId: null,
    template: null,
    envs: [],
    hooks: [],
    config: null,
    vmid: null,
    task: null,
    hooksDone: [],
    hookInFlight: null,
    warnings: [],
    createdAt: 0,
    startedAt: null,
    pid: null,
    finishedAt: null,
    exitCode: null,
    reason: "",
    message: "",
    stopRequestedAt: null,
    stopTimeoutSeconds: null,
    removeRequested: false,
    resources: null,
    resourcesRequested: null,
    resourcesPending: false,
    lastError: null,
    leaks: [],
  };
}

export function hooksOfStage(context: ContainerContext, stage: HookStage): HookSpec[] {
  const rank = (h: HookSpec) => phaseOrder.indexOf(h.phase);
  // A stable sort: within a phase, the hooks keep their files' order.
  return context.hooks.filter((h) => stageOfPhase[h.phase] === stage)
    .sort((a, b) => rank(a) - rank(b));
}

/** Exit code and reason containerd reports when a container could not start. */
const startError = { exitCode: 128, reason: "StartError" };

export function evolveContainer(context: ContainerContext, event: DomainEvent): ContainerContext {
  switch (event.type) {
    case "ContainerRequested": {
      const { sandboxId, metadata, image, envs, hooks, config } = event.data;
      return {
        ...context,
        sandboxId,
        name: metadata.name,
        attempt: metadata.attempt,
        image,
        envs,
        hooks,
        config,
        createdAt: event.time,
      };
    }
    case "ContainerAdopted": {
      const { sandboxId, metadata, image, imageId, template, vmid, config, createdAt, exit } =
        event.data;
      return {
        ...context,
        sandboxId,
        name: metadata.name,
        attempt: metadata.attempt,
        image,
        imageId,
        template,
        vmid,
        config,
        createdAt,
        // When it started is not known: the adoption is the earliest time that is.
        startedAt: event.data.state === "created" ? null : event.time,
        ...(exit === undefined ? {} : {
          exitCode: exit.exitCode,
          reason: exit.reason,
          message: exit.message ?? "",
          finishedAt: exit.finishedAt,
        }),
      };
    }
    case "ImageResolved":
      return { ...context, imageId: event.data.imageId, template: event.data.template };
    case "VmidAllocated":
      return { ...context, vmid: event.data.vmid, task: null };
    case "ContainerResourcesRequested":
      return {
        ...context,
        resourcesRequested: event.data.resources,
        resourcesPending: true,
        lastError: null,
      };
    case "ContainerResourcesUpdated":
      return {
        ...context,
        resources: event.data.resources,
        resourcesRequested: null,
        resourcesPending: false,
      };
    case "ContainerResourcesUpdateFailed":
      return {
        ...context,
        resourcesRequested: null,
        resourcesPending: false,
        lastError: failure(event),
      };
    case "PveTaskStarted":
      return { ...context, task: { upid: event.data.upid, operation: event.data.operation } };
    case "CtCreated":
    case "CtConfigured":
      return { ...context, task: null };
    case "HookStarted":
      return { ...context, hookInFlight: event.data.name };
    case "HookFinished":
      return { ...context, hookInFlight: null, hooksDone: [...context.hooksDone, event.data.name] };
    case "HookFailed": {
      const { stage, name, error } = event.data;
      const next = {
        ...context,
        hookInFlight: null,
        hooksDone: [...context.hooksDone, name],
        warnings: [...context.warnings, `${stage} hook ${name}: ${error}`],
      };
      if (stage === "start") {
        return {
          ...next,
          ...startError,
          message: `${name} hook failed: ${error}`,
          finishedAt: event.time,
          lastError: failure(event),
        };
      }
      return next;
    }
    case "HooksCompleted":
      return { ...context, hooksDone: [], hookInFlight: null };
    case "ContainerStarted":
      return {
        ...context,
        task: null,
        startedAt: event.data.startedAt,
        pid: event.data.pid ?? null,
      };
    case "ContainerStartFailed":
      return {
        ...context,
        task: null,
        ...startError,
        message: event.data.error,
        finishedAt: event.time,
        lastError: failure(event),
      };
    case "ContainerStopRequested":
      return {
        ...context,
        stopRequestedAt: event.time,
        stopTimeoutSeconds: event.data.timeoutSeconds,
        lastError: null,
      };
    case "ContainerStopFailed":
      return { ...context, task: null, stopRequestedAt: null, lastError: failure(event) };
    case "ContainerExited": {
      const { exitCode, reason, message, finishedAt } = event.data;
      return { ...context, task: null, exitCode, reason, message: message ?? "", finishedAt };
    }
    case "ContainerRemoveRequested":
      return { ...context, removeRequested: true, lastError: null };
    case "CtDestroyed":
      return { ...context, task: null };
    case "CtDestroyFailed": {
      const leak = `CT ${context.vmid ?? "?"}: ${event.data.error}`;
      return { ...context, task: null, lastError: failure(event), leaks: [...context.leaks, leak] };
    }
    case "ImageResolveFailed":
    case "VmidAllocateFailed":
    case "PveTaskFailed":
    case "CtConfigureFailed":
      return { ...context, task: null, lastError: failure(event) };
    default:
      return context;
  }
}

function failure(event: DomainEvent): StepError {
  const data = event.data as { error: string; code?: string };
  return data.code === undefined
    ? { event: event.type, error: data.error }
    : { event: event.type, error: data.error, code: data.code };
}
