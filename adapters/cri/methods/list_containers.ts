import type { PodRuntime } from "../../../runtime/api.ts";
import { container, matchesLabels, type Message } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

/** Filters: id and sandbox id (unique prefixes resolved first), state, labels. */
export const listContainers = (rt: PodRuntime): UnaryHandler => (request: Message) => {
  const filter = (request.filter ?? {}) as Message;
  const id = filter.id ? rt.resolveContainer(filter.id) ?? filter.id : undefined;
  const sandboxId = filter.pod_sandbox_id
    ? rt.resolveSandbox(filter.pod_sandbox_id) ?? filter.pod_sandbox_id
    : undefined;
  const state = filter.state?.state as string | undefined;
  const items = rt.containers().filter((c) =>
    (id === undefined || c.id === id) &&
    (sandboxId === undefined || c.sandboxId === sandboxId) &&
    (state === undefined || c.state === state) &&
    matchesLabels(c.labels, filter.label_selector)
  );
  return Promise.resolve({ containers: items.map(container) });
};
