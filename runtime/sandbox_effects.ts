/** The sandbox's effects bound to the node (namespaces) and CNI. */
import type { NetworkPlugin } from "../adapters/cni/mod.ts";
import type { NodeAdapter } from "../adapters/node/mod.ts";
import type { AdapterEffectHandlers } from "../machines/effects.ts";
import { lastAttached, nextNetwork } from "../machines/sandbox_context.ts";
import { InternalError } from "../lib/errors.ts";
import type { SandboxSpec } from "./api.ts";

export function sandboxEffects(
  deps: { node: NodeAdapter; cni: NetworkPlugin },
): AdapterEffectHandlers["sandbox"] {
  const { node, cni } = deps;
  return {
    async pinNamespaces({ stream, context }) {
      const spec = context.config as SandboxSpec;
      const { paths } = await node.pinNamespaces(stream, {
        // As containerd: no hostname given means the pod's name.
        hostname: spec.hostname || spec.metadata.name,
        dns: spec.dnsConfig,
        hostNetwork: spec.hostNetwork,
        hostIpc: spec.hostIpc ?? false,
        sysctls: spec.sysctls,
      });
      return { type: "NamespacesPinned", data: { paths } };
    },
    async addNetwork({ stream, context, emit }) {
      const net = nextNetwork(context);
      const netns = context.namespaces?.net;
      if (net === undefined || netns === undefined) {
        throw new InternalError(`Sandbox "${stream}" has no network left to add or no netns`);
      }
      // Recorded first: after a crash the resumed ADD knows an earlier one may have run
      // (the plugins' ADD for the same container id and ifname is then safe to repeat).
      await emit({ type: "CniAddStarted", data: net });
      const result = await cni.add({ sandboxId: stream, netns, ...net });
      return { type: "CniAdded", data: { ...net, result } };
    },
    async delNetwork({ stream, context }) {
      const net = lastAttached(context);
      if (net === undefined) {
        throw new InternalError(`Sandbox "${stream}" has no network to delete`);
      }
      await cni.del({
        sandboxId: stream,
        netns: context.namespaces?.net ?? "",
        name: net.name,
        ifname: net.ifname,
      });
      return { type: "CniDeleted", data: { name: net.name, ifname: net.ifname } };
    },
    async unpinNamespaces({ stream, context }) {
      await node.unpinNamespaces(stream, context.namespaces);
      return { type: "NamespacesUnpinned", data: {} };
    },
  };
}
