import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, existingContainer, type Message, required } from "../convert.ts";
import { resourcesOf } from "../requests.ts";
import type { UnaryHandler } from "../rpc.ts";

/** PUT config: bytes → MiB (16 MiB floor), quota/period → cpulimit, shares → cpuunits. */
export const updateContainerResources =
  (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
    const id = existingContainer(rt, required(request.container_id, "container_id"));
    const resources = resourcesOf(request.linux);
    if (resources !== null) await rt.updateContainerResources(id, resources, callOf(ctx));
    return {};
  };
