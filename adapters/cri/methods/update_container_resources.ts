import { NotFoundError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, type Message, required } from "../convert.ts";
import { resourcesOf } from "../requests.ts";
import type { UnaryHandler } from "../rpc.ts";

/** PUT config: bytes → MiB (16 MiB floor), quota/period → cpulimit, shares → cpuunits. */
export const updateContainerResources =
  (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
    const given = required(request.container_id, "container_id");
    const id = rt.resolveContainer(given);
    if (id === undefined) {
      throw new NotFoundError(`Container "${given}" not found`, {
        details: { container_id: given },
      });
    }
    const resources = resourcesOf(request.linux);
    if (resources !== null) await rt.updateContainerResources(id, resources, callOf(ctx));
    return {};
  };
