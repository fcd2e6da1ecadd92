import type { ContainerListItem, PodRuntime } from "../../../runtime/api.ts";
import { container, matchesLabels, type Message } from "../convert.ts";
import { EncodedResponse } from "../encoded_response.ts";
import { EncodedListCache } from "../list_encoding.ts";
import type { UnaryHandler } from "../rpc.ts";

/**
 * Filters: id and sandbox id (unique prefixes resolved first), state, labels. Entries stay
 * encoded between calls (the kubelet relists every second); only a changed one re-encodes.
 */
export const listContainers = (rt: PodRuntime): UnaryHandler => {
  const cache = new EncodedListCache<ContainerListItem>("containers", container);
  return (request: Message) => {
    const filter = (request.filter ?? {}) as Message;
    const id = filter.id ? rt.resolveContainer(filter.id) ?? filter.id : undefined;
    const sandboxId = filter.pod_sandbox_id
      ? rt.resolveSandbox(filter.pod_sandbox_id) ?? filter.pod_sandbox_id
      : undefined;
    const state = filter.state?.state as string | undefined;
    const selector = filter.label_selector as Record<string, string> | null | undefined;
    const all = rt.containers();
    const items = all.filter((c) =>
      (id === undefined || c.id === id) &&
      (sandboxId === undefined || c.sandboxId === sandboxId) &&
      (state === undefined || c.state === state) &&
      matchesLabels(c.labels, selector)
    );
    return Promise.resolve(new EncodedResponse(cache.encode(items)));
  };
};
