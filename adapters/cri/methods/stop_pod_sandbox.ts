import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, type Message, required } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

/** A sandbox that is already gone is stopped: no error (the CRI says so). */
export const stopPodSandbox = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const id = rt.resolveSandbox(required(request.pod_sandbox_id, "pod_sandbox_id"));
  if (id !== undefined) await rt.stopPodSandbox(id, callOf(ctx));
  return {};
};
