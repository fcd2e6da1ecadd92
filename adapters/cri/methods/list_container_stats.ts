import type { PodRuntime } from "../../../runtime/api.ts";
import { containerStats, matchesLabels, type Message } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const listContainerStats = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const filter = (request.filter ?? {}) as Message;
  const id = filter.id ? rt.resolveContainer(filter.id) ?? filter.id : undefined;
  const sandboxId = filter.pod_sandbox_id
    ? rt.resolveSandbox(filter.pod_sandbox_id) ?? filter.pod_sandbox_id
    : undefined;
  const wanted = rt.containers().filter((c) =>
    (id === undefined || c.id === id) &&
    (sandboxId === undefined || c.sandboxId === sandboxId) &&
    matchesLabels(c.labels, filter.label_selector)
  );
  const stats = await Promise.all(wanted.map((c) => rt.containerStats(c.id)));
  return { stats: stats.filter((s) => s !== undefined).map(containerStats) };
};
