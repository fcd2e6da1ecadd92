import type { PodRuntime } from "../../../runtime/api.ts";
import { matchesLabels, type Message, podSandbox } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

/** Filters: id (a unique prefix is resolved first, as containerd does), state, labels. */
export const listPodSandbox = (rt: PodRuntime): UnaryHandler => (request: Message) => {
  const filter = (request.filter ?? {}) as Message;
  const id = filter.id ? rt.resolveSandbox(filter.id) ?? filter.id : undefined;
  const state = filter.state?.state as string | undefined;
  const items = rt.sandboxes().filter((s) =>
    (id === undefined || s.id === id) &&
    (state === undefined || s.state === state) &&
    matchesLabels(s.labels, filter.label_selector)
  );
  return Promise.resolve({ items: items.map(podSandbox) });
};
