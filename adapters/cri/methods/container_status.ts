import type { PodRuntime } from "../../../runtime/api.ts";
import {
  containerStatus as statusMessage,
  existingContainer,
  type Message,
  required,
  verboseInfo,
} from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const containerStatus = (rt: PodRuntime): UnaryHandler => (request: Message) => {
  const id = existingContainer(rt, required(request.container_id, "container_id"));
  return Promise.resolve({
    status: statusMessage(rt.container(id)!),
    info: verboseInfo(request.verbose === true, () => rt.containerInfo(id)),
  });
};
