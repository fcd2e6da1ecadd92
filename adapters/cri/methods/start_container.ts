import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, existingContainer, type Message, required } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const startContainer = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const id = existingContainer(rt, required(request.container_id, "container_id"));
  await rt.startContainer(id, callOf(ctx));
  return {};
};
