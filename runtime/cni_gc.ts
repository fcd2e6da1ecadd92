/**
 * CNI GC (spec 1.1): at startup and then periodically, the network's plugins are told which
 * attachments are valid — every network a sandbox has or is adding — and release the rest
 * (IPs, interfaces, rules left by a crash or by a DEL that never ran).
 */
import type { NetworkPlugin } from "../adapters/cni/mod.ts";
import type { Logger } from "../lib/log.ts";
import type { Registry } from "../machines/registry.ts";
import type { SandboxContext } from "../machines/sandbox_context.ts";

export function startCniGc(
  registry: Registry,
  cni: NetworkPlugin,
  intervalMs: number,
  log: Logger,
): () => void {
  const gc = cni.gc?.bind(cni);
  if (gc === undefined) return () => {};
  let running = false;
  const collect = async () => {
    if (running) return;
    running = true;
    try {
      const valid = registry.actors("sandbox").flatMap((actor) => {
        const context = actor.state.context as SandboxContext;
        const nets = [...context.attached, ...(context.addInFlight ? [context.addInFlight] : [])];
        return nets.map((net) => ({ sandboxId: actor.stream, ifname: net.ifname }));
      });
      await gc(valid);
    } catch (error) {
      log.warn("CNI GC failed", { error: String(error) });
    } finally {
      running = false;
    }
  };
  void collect();
  const timer = setInterval(() => void collect(), intervalMs);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
