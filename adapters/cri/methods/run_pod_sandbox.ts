import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, type Message } from "../convert.ts";
import { sandboxSpecOf } from "../requests.ts";
import type { UnaryHandler } from "../rpc.ts";

export const runPodSandbox = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const spec = sandboxSpecOf(request.config, request.runtime_handler);
  const view = await rt.runPodSandbox(spec, callOf(ctx));
  return { pod_sandbox_id: view.id };
};
