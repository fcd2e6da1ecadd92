import { NotFoundError } from "../../../lib/errors.ts";
import type { PodRuntime } from "../../../runtime/api.ts";
import {
  containerStatus,
  type Message,
  nanos,
  podSandboxStatus as statusMessage,
  required,
  verboseInfo,
} from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const podSandboxStatus = (rt: PodRuntime): UnaryHandler => (request: Message) => {
  const given = required(request.pod_sandbox_id, "pod_sandbox_id");
  const id = rt.resolveSandbox(given);
  const view = id === undefined ? undefined : rt.sandbox(id);
  if (id === undefined || view === undefined) {
    throw new NotFoundError(`Pod sandbox "${given}" not found`, { details: { sandbox_id: given } });
  }
  const containers = view.containerIds
    .map((cid) => rt.container(cid))
    .filter((c) => c !== undefined)
    .map(containerStatus);
  return Promise.resolve({
    status: statusMessage(view),
    info: verboseInfo(request.verbose === true, () => rt.sandboxInfo(id)),
    containers_statuses: containers,
    timestamp: nanos(Date.now()),
  });
};
