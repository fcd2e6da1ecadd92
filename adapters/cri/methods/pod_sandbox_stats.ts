import { NotFoundError } from "../../../lib/errors.ts";
import type { ContainerStatsView, PodRuntime, SandboxListItem } from "../../../runtime/api.ts";
import {
  containerStats,
  existingSandbox,
  matchesLabels,
  type Message,
  nanos,
  required,
} from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

/** A pod's usage is the sum of its containers' (its CTs are all there is). */
async function podStats(rt: PodRuntime, sandbox: SandboxListItem): Promise<Message> {
  const own = rt.containers().filter((c) => c.sandboxId === sandbox.id);
  const stats = (await Promise.all(own.map((c) => rt.containerStats(c.id))))
    .filter((s): s is ContainerStatsView => s !== undefined);
  const timestamp = nanos(Date.now());
  const sum = (pick: (s: ContainerStatsView) => string) =>
    stats.reduce((total, s) => total + BigInt(pick(s)), 0n).toString();
  return {
    attributes: {
      id: sandbox.id,
      metadata: sandbox.metadata,
      labels: sandbox.labels,
      annotations: sandbox.annotations,
    },
    linux: {
      cpu: { timestamp, usage_core_nano_seconds: { value: sum((s) => s.cpuUsageCoreNanoSeconds) } },
      memory: { timestamp, working_set_bytes: { value: sum((s) => s.memoryWorkingSetBytes) } },
      containers: stats.map(containerStats),
    },
  };
}

export const podSandboxStats = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const id = existingSandbox(rt, required(request.pod_sandbox_id, "pod_sandbox_id"));
  const sandbox = rt.sandboxes().find((s) => s.id === id);
  if (sandbox === undefined) throw new NotFoundError(`Pod sandbox "${id}" not found`);
  return { stats: await podStats(rt, sandbox) };
};

export const listPodSandboxStats = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const filter = (request.filter ?? {}) as Message;
  const id = filter.id ? rt.resolveSandbox(filter.id) ?? filter.id : undefined;
  const wanted = rt.sandboxes().filter((s) =>
    (id === undefined || s.id === id) && matchesLabels(s.labels, filter.label_selector)
  );
  return { stats: await Promise.all(wanted.map((s) => podStats(rt, s))) };
};
