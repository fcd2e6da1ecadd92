import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, type Message, required } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

/** Kills it first if it runs; already gone is no error (the CRI says so). */
export const removeContainer = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const id = rt.resolveContainer(required(request.container_id, "container_id"));
  if (id !== undefined) await rt.removeContainer(id, callOf(ctx));
  return {};
};
