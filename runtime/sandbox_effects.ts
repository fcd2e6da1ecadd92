/** The sandbox's effects bound to the node (namespaces) and CNI. */
import type { NetworkPlugin } from "../adapters/cni/mod.ts";
import type { NodeAdapter } from "../adapters/node/mod.ts";
import type { AdapterEffectHandlers } from "../machines/effects.ts";
import { lastAttached, nextNetwork } from "../machines/sandbox_context.ts";
import { InternalError } from "../lib/errors.ts";
import type { SandboxSpec } from "./api.ts";

export function sandboxEffects(
  deps: { node: NodeAdapter; cni: NetworkPlugin; podCidrs?: () => string[] },
): AdapterEffectHandlers["sandbox"] {
  const { node, cni } = deps;
  const podCidrs = deps.podCidrs ?? (() => []);
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
      const spec = context.config as SandboxSpec;
      const result = await cni.add({
        sandboxId: stream,
        netns,
        ...net,
        pod: podOf(spec),
        capabilityArgs: capabilityArgs(spec, podCidrs()),
      });
      return { type: "CniAdded", data: { ...net, result } };
    },
    async delNetwork({ stream, context }) {
      const net = lastAttached(context);
      if (net === undefined) {
        throw new InternalError(`Sandbox "${stream}" has no network to delete`);
      }
      const spec = context.config as SandboxSpec;
      await cni.del({
        sandboxId: stream,
        netns: context.namespaces?.net ?? "",
        name: net.name,
        ifname: net.ifname,
        pod: podOf(spec),
        capabilityArgs: capabilityArgs(spec, podCidrs()),
      });
      return { type: "CniDeleted", data: { name: net.name, ifname: net.ifname } };
    },
    async unpinNamespaces({ stream, context }) {
      await node.unpinNamespaces(stream, context.namespaces);
      return { type: "NamespacesUnpinned", data: {} };
    },
  };
}

/** The pod as CNI_ARGS names it. */
export function podOf(spec: SandboxSpec) {
  return { namespace: spec.metadata.namespace, name: spec.metadata.name, uid: spec.metadata.uid };
}

/** The CNI capability args a pod carries, in the conventions' names and units. */
function capabilityArgs(spec: SandboxSpec, podCidrs: string[]): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  // The node's pod CIDRs (UpdateRuntimeConfig), one range set each, as containerd passes them.
  if (podCidrs.length > 0) args.ipRanges = podCidrs.map((subnet) => [{ subnet }]);
  if (spec.portMappings.length > 0) {
    args.portMappings = spec.portMappings.map((p) => ({
      hostPort: p.hostPort,
      containerPort: p.containerPort,
      protocol: p.protocol.toLowerCase() || "tcp",
      ...(p.hostIp === "" ? {} : { hostIP: p.hostIp }),
    }));
  }
  if (spec.dnsConfig !== null) {
    args.dns = {
      servers: spec.dnsConfig.servers,
      searches: spec.dnsConfig.searches,
      options: spec.dnsConfig.options,
    };
  }
  const bandwidth = bandwidthOf(spec.annotations);
  if (bandwidth !== undefined) args.bandwidth = bandwidth;
  return args;
}

/** The kubelet's bandwidth annotations, in bits per second (burst: as containerd sets it). */
function bandwidthOf(annotations: Record<string, string>): Record<string, number> | undefined {
  const ingress = quantity(annotations["kubernetes.io/ingress-bandwidth"]);
  const egress = quantity(annotations["kubernetes.io/egress-bandwidth"]);
  if (ingress === undefined && egress === undefined) return undefined;
  const burst = 2 ** 31 - 1;
  return {
    ...(ingress === undefined ? {} : { ingressRate: ingress, ingressBurst: burst }),
    ...(egress === undefined ? {} : { egressRate: egress, egressBurst: burst }),
  };
}

const units: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A Kubernetes quantity (`10M`, `1Gi`); an unreadable one is ignored, as the kubelet would refuse it. */
function quantity(text: string | undefined): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(text?.trim() ?? "");
  if (match === null) return undefined;
  return Math.round(Number(match[1]) * units[match[2] ?? ""]!);
}
