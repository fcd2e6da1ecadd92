import { NotFoundError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import { containerStats as statsMessage, type Message, required } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const containerStats = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const given = required(request.container_id, "container_id");
  const id = rt.resolveContainer(given);
  const stats = id === undefined ? undefined : await rt.containerStats(id);
  if (stats === undefined) {
    throw new NotFoundError(`Container "${given}" not found`, { details: { container_id: given } });
  }
  return { stats: statsMessage(stats) };
};
