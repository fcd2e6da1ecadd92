/**
 * Between CRI messages (as @grpc/proto-loader gives them: snake_case, int64 as decimal
 * strings, enums as names) and the runtime's views. Times are ms in the runtime and int64 ns
 * on the wire; the conversion goes through BigInt so no nanosecond passes through a number.
 */
import { InvalidArgumentError, NotFoundError } from "../../lib/errors.ts";
import type {
  CallInfo,
  ContainerListItem,
  ContainerStatsView,
  ContainerView,
  ImageView,
  PodRuntime,
  SandboxListItem,
  SandboxView,
} from "../../runtime/api.ts";
import type { RpcContext } from "./rpc.ts";

// deno-lint-ignore no-explicit-any
export type Message = Record<string, any>;

export function nanos(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "0";
  return (BigInt(Math.trunc(ms)) * 1_000_000n).toString();
}

export function callOf(ctx: RpcContext): CallInfo {
  return {
    meta: { method: ctx.method, request_id: ctx.requestId },
    signal: ctx.signal,
    ...(Number.isFinite(ctx.deadline) ? { deadline: ctx.deadline } : {}),
  };
}

/** A string field that must be set: InvalidArgument naming it otherwise. */
export function required(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "") {
    throw new InvalidArgumentError(`${field} is required`, { details: { field } });
  }
  return value;
}

export function requiredMessage(value: unknown, field: string): Message {
  if (typeof value !== "object" || value === null) {
    throw new InvalidArgumentError(`${field} is required`, { details: { field } });
  }
  return value as Message;
}

/** The full id of a live sandbox named by id or unique prefix; NotFound otherwise. */
export function existingSandbox(rt: PodRuntime, given: string): string {
  const id = rt.resolveSandbox(given);
  if (id === undefined) {
    throw new NotFoundError(`Pod sandbox "${given}" not found`, { details: { sandbox_id: given } });
  }
  return id;
}

/** The full id of a live container named by id or unique prefix; NotFound otherwise. */
export function existingContainer(rt: PodRuntime, given: string): string {
  const id = rt.resolveContainer(given);
  if (id === undefined) {
    throw new NotFoundError(`Container "${given}" not found`, { details: { container_id: given } });
  }
  return id;
}

/** Every selector label must be present with the same value (the CRI's label_selector). */
export function matchesLabels(
  labels: Record<string, string>,
  selector: Record<string, string> | null | undefined,
): boolean {
  for (const [key, value] of Object.entries(selector ?? {})) {
    if (labels[key] !== value) return false;
  }
  return true;
}

export function stringMap(value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null) return {};
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => typeof v === "string"),
  ) as Record<string, string>;
}

/** crictl parses verbose info values as JSON. */
export function verboseInfo(verbose: boolean, info: () => Record<string, unknown>) {
  return verbose ? { info: JSON.stringify(info()) } : {};
}

export function podSandbox(item: SandboxListItem): Message {
  return {
    id: item.id,
    metadata: item.metadata,
    state: item.state,
    created_at: nanos(item.createdAt),
    labels: item.labels,
    annotations: item.annotations,
    runtime_handler: item.runtimeHandler,
  };
}

export function podSandboxStatus(view: SandboxView): Message {
  const [primary, ...others] = view.ips;
  return {
    id: view.id,
    metadata: view.spec.metadata,
    state: view.state,
    created_at: nanos(view.createdAt),
    network: { ip: primary ?? "", additional_ips: others.map((ip) => ({ ip })) },
    linux: {
      namespaces: {
        options: {
          network: view.spec.hostNetwork ? "NODE" : "POD",
          pid: "CONTAINER",
          ipc: view.spec.hostIpc ? "NODE" : "POD",
          target_id: "",
        },
      },
    },
    labels: view.spec.labels,
    annotations: view.spec.annotations,
    runtime_handler: view.spec.runtimeHandler,
  };
}

export function container(item: ContainerListItem): Message {
  return {
    id: item.id,
    pod_sandbox_id: item.sandboxId,
    metadata: { name: item.name, attempt: item.attempt },
    image: { image: item.image, annotations: {} },
    image_ref: item.imageId,
    image_id: item.imageId,
    state: item.state,
    created_at: nanos(item.createdAt),
    labels: item.labels,
    annotations: item.annotations,
  };
}

export function containerStatus(view: ContainerView): Message {
  const { spec } = view;
  return {
    id: view.id,
    metadata: { name: spec.name, attempt: spec.attempt },
    state: view.state,
    created_at: nanos(view.createdAt),
    started_at: nanos(view.startedAt),
    finished_at: nanos(view.finishedAt),
    exit_code: view.exitCode,
    image: { image: spec.image, annotations: {} },
    image_ref: view.imageId,
    image_id: view.imageId,
    reason: view.reason,
    message: view.message,
    labels: spec.labels,
    annotations: spec.annotations,
    mounts: spec.mounts.map((m) => ({
      container_path: m.containerPath,
      host_path: m.hostPath,
      readonly: m.readonly,
      propagation: m.propagation,
    })),
    log_path: view.logPath,
    resources: spec.resources === null ? null : {
      linux: {
        cpu_period: spec.resources.cpuPeriod,
        cpu_quota: spec.resources.cpuQuota,
        cpu_shares: spec.resources.cpuShares,
        memory_limit_in_bytes: spec.resources.memoryLimitInBytes,
        memory_swap_limit_in_bytes: spec.resources.memorySwapLimitInBytes,
        cpuset_cpus: spec.resources.cpusetCpus,
        cpuset_mems: spec.resources.cpusetMems,
      },
    },
  };
}

export function containerStats(stats: ContainerStatsView): Message {
  const timestamp = nanos(stats.timestamp);
  return {
    attributes: {
      id: stats.id,
      metadata: { name: stats.spec.name, attempt: stats.spec.attempt },
      labels: stats.spec.labels,
      annotations: stats.spec.annotations,
    },
    cpu: { timestamp, usage_core_nano_seconds: { value: stats.cpuUsageCoreNanoSeconds } },
    memory: {
      timestamp,
      working_set_bytes: { value: stats.memoryWorkingSetBytes },
      ...(stats.memoryAvailableBytes === null
        ? {}
        : { available_bytes: { value: stats.memoryAvailableBytes } }),
    },
    ...(stats.writableLayer === null ? {} : {
      writable_layer: {
        timestamp,
        fs_id: { mountpoint: stats.writableLayer.mountpoint },
        used_bytes: { value: stats.writableLayer.usedBytes },
        inodes_used: { value: stats.writableLayer.inodesUsed },
      },
    }),
  };
}

export function image(view: ImageView): Message {
  return {
    id: view.id,
    repo_tags: view.repoTags,
    repo_digests: view.repoDigests,
    size: String(view.size),
    ...(view.uid === null ? {} : { uid: { value: view.uid } }),
    username: view.username,
    spec: { image: view.id, annotations: {} },
    pinned: false,
  };
}
