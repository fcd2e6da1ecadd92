import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, type Message, required } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

/** Stops it if needed, removes its containers, then it; already gone is no error. */
export const removePodSandbox = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const id = rt.resolveSandbox(required(request.pod_sandbox_id, "pod_sandbox_id"));
  if (id !== undefined) await rt.removePodSandbox(id, callOf(ctx));
  return {};
};
