import type { PodRuntime } from "../../../runtime/api.ts";
import {
  containerStatus,
  existingSandbox,
  type Message,
  nanos,
  podSandboxStatus as statusMessage,
  required,
  verboseInfo,
} from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const podSandboxStatus = (rt: PodRuntime): UnaryHandler => (request: Message) => {
  const id = existingSandbox(rt, required(request.pod_sandbox_id, "pod_sandbox_id"));
  const view = rt.sandbox(id)!;
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
