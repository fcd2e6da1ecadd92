/**
 * Effects a sandbox runs on its own containers: commands on other streams, decided by the
 * owner (DESIGN §3 rule 6). Bound by the registry itself, not by adapters.
 */
import { InternalError } from "../lib/errors.ts";
import { removeContainer, stopContainer } from "./commands.ts";
import type { EffectHandler } from "./effects.ts";
import type { Registry } from "./registry.ts";
import type { SandboxContext } from "./sandbox_context.ts";

export function ownerEffects(registry: Registry): {
  stopContainers: EffectHandler<SandboxContext>;
  removeContainers: EffectHandler<SandboxContext>;
} {
  return {
    // As containerd does: the kubelet stopped them gracefully already, so no grace period.
    async stopContainers({ context, stream }) {
      const ids = context.containers.map((c) => c.id);
      const meta = { cause: "StopPodSandbox", sandbox_id: stream };
      const states = await Promise.all(ids.map((id) => stopContainer(registry, id, 0, { meta })));
      const stillRunning = ids.filter((_, i) => states[i]?.value === "running");
      if (stillRunning.length > 0) {
        throw new InternalError(`Containers still running: ${stillRunning.join(", ")}`);
      }
      return { type: "ContainersStopped", data: { containerIds: ids } };
    },
    async removeContainers({ context, stream }) {
      const ids = context.containers.map((c) => c.id);
      const meta = { cause: "RemovePodSandbox", sandbox_id: stream };
      const states = await Promise.all(ids.map((id) => removeContainer(registry, id, { meta })));
      const left = ids.filter((_, i) => states[i] !== undefined && states[i]!.value !== "removed");
      if (left.length > 0) {
        throw new InternalError(`Containers not removed: ${left.join(", ")}`);
      }
      return { type: "ContainersRemoved", data: { containerIds: ids } };
    },
  };
}
