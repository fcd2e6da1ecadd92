import type { PodRuntime } from "../../../runtime/api.ts";
import { containerStatus, nanos, podSandboxStatus } from "../convert.ts";
import type { StreamHandler } from "../rpc.ts";

/** Created, started, stopped and deleted, fed by the event store as commits happen. */
export const getContainerEvents = (rt: PodRuntime): StreamHandler => (_request, ctx, send) =>
  new Promise<void>((resolve) => {
    const unsubscribe = rt.onContainerEvent((event) => {
      send({
        container_id: event.containerId,
        container_event_type: event.type,
        created_at: nanos(event.time),
        pod_sandbox_status: event.sandbox === null ? null : podSandboxStatus(event.sandbox),
        containers_statuses: event.containers.map(containerStatus),
      });
    });
    const stop = () => {
      unsubscribe();
      resolve();
    };
    if (ctx.signal.aborted) stop();
    else ctx.signal.addEventListener("abort", stop, { once: true });
  });
