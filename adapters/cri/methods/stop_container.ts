import { InvalidArgumentError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, type Message, required } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

/** SIGTERM, then SIGKILL after `timeout` seconds (0: at once); already gone is no error. */
export const stopContainer = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const id = rt.resolveContainer(required(request.container_id, "container_id"));
  const timeout = Number(request.timeout ?? 0);
  if (!Number.isInteger(timeout) || timeout < 0) {
    throw new InvalidArgumentError("timeout must be a non-negative number of seconds", {
      details: { field: "timeout" },
    });
  }
  if (id !== undefined) await rt.stopContainer(id, timeout, callOf(ctx));
  return {};
};
