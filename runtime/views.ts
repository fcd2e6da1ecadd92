/** Kernel states as the runtime shows them: CRI states, specs, addresses. */
import { join } from "node:path";
import type { ContainerContext } from "../machines/container_context.ts";
import type { ContainerSummary, SandboxSummary } from "../machines/projections.ts";
import type { SandboxContext } from "../machines/sandbox_context.ts";
import type {
  ContainerListItem,
  ContainerSpec,
  ContainerState,
  ContainerView,
  SandboxListItem,
  SandboxSpec,
  SandboxState,
  SandboxView,
} from "./api.ts";

export function sandboxState(phase: string): SandboxState {
  return phase === "ready" ? "SANDBOX_READY" : "SANDBOX_NOTREADY";
}

const containerStates: Record<string, ContainerState> = {
  created: "CONTAINER_CREATED",
  prestartHooks: "CONTAINER_CREATED",
  startingCt: "CONTAINER_CREATED",
  poststartHooks: "CONTAINER_RUNNING",
  running: "CONTAINER_RUNNING",
  stopping: "CONTAINER_RUNNING",
  killing: "CONTAINER_RUNNING",
  exited: "CONTAINER_EXITED",
  removing: "CONTAINER_EXITED",
  removeFailed: "CONTAINER_EXITED",
  poststopHooks: "CONTAINER_EXITED",
};

/** Containers still being created (or rolled back) are UNKNOWN, as containerd shows them. */
export function containerState(phase: string): ContainerState {
  return containerStates[phase] ?? "CONTAINER_UNKNOWN";
}

export function sandboxListItem(id: string, s: SandboxSummary): SandboxListItem {
  return {
    id,
    state: sandboxState(s.state),
    phase: s.state,
    metadata: s.metadata,
    createdAt: s.createdAt,
    labels: s.labels,
    annotations: s.annotations,
    runtimeHandler: s.runtimeHandler,
  };
}

export function containerListItem(id: string, s: ContainerSummary): ContainerListItem {
  return {
    id,
    sandboxId: s.sandboxId,
    state: containerState(s.state),
    phase: s.state,
    name: s.name,
    attempt: s.attempt,
    image: s.image,
    imageId: s.imageId ?? "",
    createdAt: s.createdAt,
    labels: s.labels,
    annotations: s.annotations,
  };
}

/** The pod's addresses from the CNI results, in attach order, without prefix lengths. */
function podIps(context: SandboxContext): string[] {
  const ips: string[] = [];
  for (const net of context.attached) {
    const result = net.result as { ips?: { address?: unknown }[] } | undefined;
    for (const ip of result?.ips ?? []) {
      if (typeof ip.address === "string") ips.push(ip.address.replace(/\/\d+$/, ""));
    }
  }
  return ips;
}

export function sandboxView(id: string, phase: string, context: SandboxContext): SandboxView {
  return {
    id,
    state: sandboxState(phase),
    phase,
    spec: context.config as SandboxSpec,
    createdAt: context.createdAt,
    ips: podIps(context),
    containerIds: context.containers.map((c) => c.id),
    error: context.lastError === null
      ? null
      : `${context.lastError.event}: ${context.lastError.error}`,
  };
}

export function containerView(
  id: string,
  phase: string,
  context: ContainerContext,
  sandboxLogDirectory: string,
): ContainerView {
  const spec = context.config as Omit<ContainerSpec, "envs">;
  return {
    id,
    sandboxId: context.sandboxId,
    state: containerState(phase),
    phase,
    spec: { ...spec, envs: context.envs },
    imageId: context.imageId ?? "",
    vmid: context.vmid,
    createdAt: context.createdAt,
    startedAt: context.startedAt,
    finishedAt: context.finishedAt,
    exitCode: context.exitCode ?? 0,
    reason: context.reason,
    message: context.message,
    limits: context.resources,
    logPath: sandboxLogDirectory === "" || spec.logPath === ""
      ? ""
      : join(sandboxLogDirectory, spec.logPath),
  };
}
