import { NotFoundError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import {
  containerStatus as statusMessage,
  type Message,
  required,
  verboseInfo,
} from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const containerStatus = (rt: PodRuntime): UnaryHandler => (request: Message) => {
  const given = required(request.container_id, "container_id");
  const id = rt.resolveContainer(given);
  const view = id === undefined ? undefined : rt.container(id);
  if (id === undefined || view === undefined) {
    throw new NotFoundError(`Container "${given}" not found`, { details: { container_id: given } });
  }
  return Promise.resolve({
    status: statusMessage(view),
    info: verboseInfo(request.verbose === true, () => rt.containerInfo(id)),
  });
};
