import { NotFoundError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, type Message, required } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const startContainer = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const given = required(request.container_id, "container_id");
  const id = rt.resolveContainer(given);
  if (id === undefined) {
    throw new NotFoundError(`Container "${given}" not found`, { details: { container_id: given } });
  }
  await rt.startContainer(id, callOf(ctx));
  return {};
};
