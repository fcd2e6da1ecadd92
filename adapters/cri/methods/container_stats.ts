import { NotFoundError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import {
  containerStats as statsMessage,
  existingContainer,
  type Message,
  required,
} from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const containerStats = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const id = existingContainer(rt, required(request.container_id, "container_id"));
  const stats = await rt.containerStats(id);
  // Removed while its stats were read.
  if (stats === undefined) throw new NotFoundError(`Container "${id}" not found`);
  return { stats: statsMessage(stats) };
};
