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

export const podSandboxStatus = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const id = existingSandbox(rt, required(request.pod_sandbox_id, "pod_sandbox_id"));
  const view = rt.sandbox(id)!;
  const containers = view.containerIds
    .map((cid) => rt.container(cid))
    .filter((c) => c !== undefined)
    .map(containerStatus);
  // Verbose (`crictl inspectp`) also asks the CNI plugins (CHECK) whether the network holds.
  const networkCheck = request.verbose === true ? await rt.sandboxNetworkCheck(id) : {};
  return {
    status: statusMessage(view),
    info: verboseInfo(request.verbose === true, () => ({ ...rt.sandboxInfo(id), networkCheck })),
    containers_statuses: containers,
    timestamp: nanos(Date.now()),
  };
};
