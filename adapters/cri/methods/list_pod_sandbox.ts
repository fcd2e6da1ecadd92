import type { PodRuntime, SandboxListItem } from "../../../runtime/api.ts";
import { matchesLabels, type Message, podSandbox } from "../convert.ts";
import { EncodedResponse } from "../encoded_response.ts";
import { EncodedListCache } from "../list_encoding.ts";
import type { UnaryHandler } from "../rpc.ts";

/**
 * Filters: id (a unique prefix is resolved first, as containerd does), state, labels. Entries
 * stay encoded between calls; only a changed one re-encodes.
 */
export const listPodSandbox = (rt: PodRuntime): UnaryHandler => {
  const cache = new EncodedListCache<SandboxListItem>("sandboxes", podSandbox);
  return (request: Message) => {
    const filter = (request.filter ?? {}) as Message;
    const id = filter.id ? rt.resolveSandbox(filter.id) ?? filter.id : undefined;
    const state = filter.state?.state as string | undefined;
    const all = rt.sandboxes();
    const items = all.filter((s) =>
      (id === undefined || s.id === id) &&
      (state === undefined || s.state === state) &&
      matchesLabels(s.labels, filter.label_selector)
    );
    return Promise.resolve(new EncodedResponse(cache.encode(items)));
  };
};
