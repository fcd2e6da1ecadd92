import { NotFoundError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, type Message, required } from "../convert.ts";
import { containerSpecOf } from "../requests.ts";
import type { UnaryHandler } from "../rpc.ts";

export const createContainer = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const given = required(request.pod_sandbox_id, "pod_sandbox_id");
  const spec = containerSpecOf(request.config);
  const sandboxId = rt.resolveSandbox(given);
  if (sandboxId === undefined) {
    throw new NotFoundError(`Pod sandbox "${given}" not found`, { details: { sandbox_id: given } });
  }
  const view = await rt.createContainer(sandboxId, spec, callOf(ctx));
  return { container_id: view.id };
};
