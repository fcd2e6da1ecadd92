import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, existingSandbox, type Message, required } from "../convert.ts";
import { containerSpecOf } from "../requests.ts";
import type { UnaryHandler } from "../rpc.ts";

export const createContainer = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const given = required(request.pod_sandbox_id, "pod_sandbox_id");
  const spec = containerSpecOf(request.config);
  const view = await rt.createContainer(existingSandbox(rt, given), spec, callOf(ctx));
  return { container_id: view.id };
};
