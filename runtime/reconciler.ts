/**
 * Reconciliation: what the event log says against what Proxmox and the node have. Run at
 * startup, every `reconcile.intervalSeconds` and on demand (HTTP); each difference is reported,
 * and the ones that are pve-cri's own leaks are repaired:
 *
 * - a CT tagged `pve-cri` whose description names a container this log never had (lost with an
 *   old backup of it) is adopted: its stream rebuilt from the description, in the state of the
 *   CT, when its pod is here and ready, or was lost with it (the pod is then adopted too,
 *   NotReady, for the kubelet to replace); any other CT whose container no live stream holds (a
 *   removal that died with its record) is destroyed once it has been seen for the grace
 *   period; a CT without pve-cri's tag and identity is never touched;
 * - node state (include files, monitor dirs, exit files, pinned namespaces, pod files) of a
 *   container or pod no stream knows is released, and its cached CNI attachments deleted (CNI
 *   DEL with the cached result: the IP goes back);
 * - a live container whose CT is gone, or whose CT runs while the log says otherwise, is
 *   reported (the process plane reports the exits it sees; the kubelet removes the rest); a
 *   running one whose monitor died without an exit record exited, reason `Unknown`;
 * - a ready sandbox whose pinned namespaces are gone becomes NotReady (`NamespacesLost`), as
 *   does one whose pod network interfaces are gone (`NetworkLost`);
 * - a quarantined stream is reported, and its CT and node state are left for its repair.
 */
import type { NetworkPlugin } from "../adapters/cni/mod.ts";
import type { NodeAdapter } from "../adapters/node/mod.ts";
import { type ProxmoxApi, PveNotFoundError } from "../adapters/proxmox/mod.ts";
import { errorMessage, FailedPreconditionError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import {
  adoptContainer,
  adoptSandbox,
  observeContainerExit,
  observeNamespacesLost,
  observeNetworkLost,
} from "../machines/commands.ts";
import type { ContainerContext } from "../machines/container_context.ts";
import type { SandboxContext } from "../machines/sandbox_context.ts";
import type { Registry } from "../machines/registry.ts";
import type { SandboxSpec } from "./api.ts";
import { type CtAdoption, type CtIdentity, identityOf, ownerTag } from "./ct_identity.ts";

export type DriftKind =
  | "unexpected CT"
  | "missing CT"
  | "CT state"
  | "leaked container state"
  | "leaked pod state"
  | "lost namespaces"
  | "lost network"
  | "lost monitor"
  | "leaked pod network"
  | "quarantined stream";

export interface Drift {
  kind: DriftKind;
  /** The VMID, or the container or sandbox id. */
  subject: string;
  detail: string;
  /** What this run did about it, if anything. */
  repaired?: string;
}

export interface ReconcilerDeps {
  api: ProxmoxApi;
  registry: Registry;
  node: NodeAdapter;
  /** The pod network, whose cached attachments of unknown sandboxes are deleted. */
  cni?: NetworkPlugin;
  log: Logger;
  /** How long a CT that no stream knows is left alone before it is destroyed. */
  orphanGraceMs: number;
  now?: () => number;
}

/** How long a monitor's exit record may come after the monitor is gone. */
const lostMonitorGraceMs = 2000;

/** Stream states in which the container's CT exists. */
const withCt = new Set(["created", "startingCt", "running", "stopping", "killing", "exited"]);
/** What the CT's status should be in the states a container rests in. */
const ctStatusOf: Record<string, string> = {
  created: "stopped",
  running: "running",
  exited: "stopped",
};

export class Reconciler {
  readonly #deps: ReconcilerDeps;
  readonly #now: () => number;
  /** Orphan CTs: VMID → when first seen. */
  readonly #orphans = new Map<number, number>();
  #running: Promise<Drift[]> | undefined;

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** One pass; with `repair`, pve-cri's own leaks are removed. Concurrent calls share a pass. */
  run(options: { repair: boolean }): Promise<Drift[]> {
    if (this.#running !== undefined && options.repair) return this.#running;
    const pass = this.#pass(options.repair).finally(() => {
      if (this.#running === pass) this.#running = undefined;
    });
    if (options.repair) this.#running = pass;
    return pass;
  }

  async #pass(repair: boolean): Promise<Drift[]> {
    const { api, registry, node, log } = this.#deps;
    const drift: Drift[] = [];
    // Proxmox first, then the log: a CT made meanwhile has its stream already.
    const cts = await api.listCts();
    const containers = registry.actors("container").map((actor) => ({
      id: actor.stream,
      state: actor.value,
      vmid: (actor.state.context as ContainerContext).vmid,
    }));
    // A quarantined stream's CT and node state are kept for the operator who repairs it.
    const quarantined = registry.store.quarantined();
    const setAside = new Set(quarantined.map((q) => q.stream));
    const liveIds = new Set([...containers.map((c) => c.id), ...setAside]);
    for (const q of quarantined) {
      drift.push({
        kind: "quarantined stream",
        subject: q.stream,
        detail: `${q.kind} set aside${q.seq === null ? "" : ` at seq ${q.seq}`}: ${q.reason}`,
      });
    }
    const byVmid = new Map(containers.filter((c) => c.vmid !== null).map((c) => [c.vmid!, c]));
    const seen = new Set<number>();
    for (const ct of cts) {
      seen.add(ct.vmid);
      const owner = byVmid.get(ct.vmid);
      if (owner !== undefined) {
        const expected = ctStatusOf[owner.state];
        if (expected !== undefined && expected !== ct.status) {
          drift.push({
            kind: "CT state",
            subject: String(ct.vmid),
            detail: `container ${owner.id} is ${owner.state}, its CT is ${ct.status}`,
          });
        }
        continue;
      }
      if (!(ct.tags ?? "").split(/[;, ]/).includes(ownerTag)) continue;
      drift.push(await this.#orphan(ct.vmid, ct.status, repair, setAside));
    }
    for (const vmid of this.#orphans.keys()) if (!seen.has(vmid)) this.#orphans.delete(vmid);
    for (const c of containers) {
      if (c.vmid === null || !withCt.has(c.state) || seen.has(c.vmid)) continue;
      drift.push({
        kind: "missing CT",
        subject: String(c.vmid),
        detail: `container ${c.id} is ${c.state}, Proxmox has no CT ${c.vmid}`,
      });
    }
    const processes = node.processes;
    const silent = (id: string) =>
      processes !== undefined && !processes.monitorAlive(id) && processes.exitOf(id) === undefined;
    let lost = containers.filter((c) => c.state === "running" && silent(c.id));
    if (lost.length > 0) {
      // A monitor's exit command writes the record after the monitor is gone: give it time.
      await new Promise((resolve) => setTimeout(resolve, lostMonitorGraceMs));
      lost = lost.filter((c) => registry.get(c.id)?.value === "running" && silent(c.id));
    }
    for (const c of lost) {
      const item: Drift = {
        kind: "lost monitor",
        subject: c.id,
        detail: "the running container's monitor is gone and recorded no exit",
      };
      const exit = {
        exitCode: 255,
        reason: "Unknown",
        message: "the container's monitor is gone and recorded no exit",
        finishedAt: this.#now(),
      };
      if (repair && await observeContainerExit(registry, c.id, exit)) {
        item.repaired = "exited (Unknown)";
      }
      drift.push(item);
    }
    for (const id of processes?.containersOnNode() ?? []) {
      if (liveIds.has(id)) continue;
      const item: Drift = {
        kind: "leaked container state",
        subject: id,
        detail: "include file, monitor dir or exit file of a container no stream knows",
      };
      // A monitor still running belongs to a CT that is an orphan: that CT goes first.
      if (repair && !processes!.monitorAlive(id)) {
        await processes!.release(id);
        item.repaired = "released";
      }
      drift.push(item);
    }
    for (const actor of registry.actors("sandbox")) {
      const paths = (actor.state.context as SandboxContext).namespaces;
      if (actor.value !== "ready" || paths === null || node.lostNamespaces === undefined) continue;
      const missing = node.lostNamespaces(paths);
      if (missing.length === 0) continue;
      const item: Drift = {
        kind: "lost namespaces",
        subject: actor.stream,
        detail: `sandbox's pinned ${missing.join(", ")} namespace(s) gone`,
      };
      if (repair && await observeNamespacesLost(registry, actor.stream, missing)) {
        item.repaired = "sandbox NotReady";
      }
      drift.push(item);
    }
    for (const actor of registry.actors("sandbox")) {
      const context = actor.state.context as SandboxContext;
      const netns = context.namespaces?.net;
      const ifnames = context.attached.map((a) => a.ifname);
      if (actor.value !== "ready" || netns === undefined || ifnames.length === 0) continue;
      if (node.lostInterfaces === undefined || node.lostNamespaces?.({ net: netns }).length) {
        continue;
      }
      const missing = await node.lostInterfaces(netns, ifnames);
      if (missing.length === 0) continue;
      const item: Drift = {
        kind: "lost network",
        subject: actor.stream,
        detail: `sandbox's pod network interface(s) ${missing.join(", ")} gone`,
      };
      if (repair && await observeNetworkLost(registry, actor.stream, missing)) {
        item.repaired = "sandbox NotReady";
      }
      drift.push(item);
    }
    const sandboxes = new Set([...registry.actors("sandbox").map((a) => a.stream), ...setAside]);
    for (const id of node.podsOnNode?.() ?? []) {
      if (sandboxes.has(id)) continue;
      const item: Drift = {
        kind: "leaked pod state",
        subject: id,
        detail: "pinned namespaces or pod files of a sandbox no stream knows",
      };
      if (repair) {
        await node.unpinNamespaces(id, null);
        item.repaired = "unpinned and removed";
      }
      drift.push(item);
    }
    for (const attachment of this.#deps.cni?.cachedAttachments?.() ?? []) {
      if (sandboxes.has(attachment.sandboxId)) continue;
      const item: Drift = {
        kind: "leaked pod network",
        subject: attachment.sandboxId,
        detail:
          `CNI attachment ${attachment.name}/${attachment.ifname} of a sandbox no stream knows`,
      };
      if (repair) {
        // Its namespace may be gone: CNI DEL with no netns still releases the IP.
        await this.#deps.cni!.del({ ...attachment, netns: "" });
        item.repaired = "CNI DEL with the cached result";
      }
      drift.push(item);
    }
    for (const item of drift) {
      log[item.repaired === undefined ? "info" : "warn"]("reconciliation", { ...item });
    }
    return drift;
  }

  /** A CT tagged as pve-cri's that no live stream holds. */
  async #orphan(
    vmid: number,
    status: string,
    repair: boolean,
    setAside: Set<string>,
  ): Promise<Drift> {
    const { api, registry } = this.#deps;
    const subject = String(vmid);
    let description: string | undefined;
    try {
      description = (await api.ctConfig({ vmid })).description;
    } catch (error) {
      if (error instanceof PveNotFoundError) {
        return { kind: "unexpected CT", subject, detail: "gone while looked at" };
      }
      throw error;
    }
    const identity = identityOf(description);
    if (identity === undefined) {
      return {
        kind: "unexpected CT",
        subject,
        detail: `tagged ${ownerTag} but its description names no container: left alone`,
      };
    }
    if (setAside.has(identity.containerId) || setAside.has(identity.sandboxId)) {
      return {
        kind: "unexpected CT",
        subject,
        detail: `belongs to quarantined stream of container ${identity.containerId}: left alone`,
      };
    }
    // Asked now, not from the pass's start: a stream made meanwhile owns its CT.
    if (registry.get(identity.containerId) !== undefined) {
      return {
        kind: "unexpected CT",
        subject,
        detail: `names container ${identity.containerId}, which holds another VMID: left alone`,
      };
    }
    // A stream this log never had (lost with an old backup of it): taken back when the CT
    // carries enough to rebuild it and its pod is here and ready, or was lost with it.
    if (
      identity.adoption !== undefined &&
      registry.store.streamInfo(identity.containerId) === undefined
    ) {
      const what = `pve-cri's CT for ${identity.podNamespace}/${identity.podName} container ` +
        `${identity.name} (${identity.containerId}), a stream the log lost`;
      if (!repair) return { kind: "unexpected CT", subject, detail: `${what}; adopted on repair` };
      try {
        await adoptFrom(registry, this.#deps.node, vmid, status, identity, identity.adoption);
        this.#orphans.delete(vmid);
        return { kind: "unexpected CT", subject, detail: what, repaired: "adopted" };
      } catch (error) {
        this.#deps.log.info("not adopted", { vmid, error: errorMessage(error) });
      }
    }
    const now = this.#now();
    const first = this.#orphans.get(vmid) ?? now;
    this.#orphans.set(vmid, first);
    const detail = `pve-cri's CT for ${identity.podNamespace}/${identity.podName} ` +
      `container ${identity.name} (${identity.containerId}), which no stream knows`;
    const left = first + this.#deps.orphanGraceMs - now;
    if (!repair || left > 0) {
      return {
        kind: "unexpected CT",
        subject,
        detail: `${detail}; destroyed after ${Math.ceil(Math.max(0, left) / 1000)} s more`,
      };
    }
    try {
      await api.waitForTask(await api.destroyCt({ vmid, force: true, purge: true }));
      await this.#deps.node.processes?.release(identity.containerId);
      this.#orphans.delete(vmid);
      return { kind: "unexpected CT", subject, detail, repaired: "destroyed" };
    } catch (error) {
      return {
        kind: "unexpected CT",
        subject,
        detail: `${detail}; destroying it failed: ${errorMessage(error)}`,
      };
    }
  }
}

/**
 * What an adopted pod's spec can be: its identity and the labels the kubelet finds pods by;
 * the rest (hostname, DNS, ports, log directory) is not on any CT.
 */
function adoptedSandboxSpec(identity: CtIdentity): SandboxSpec {
  const metadata = {
    name: identity.podName,
    uid: identity.podUid,
    namespace: identity.podNamespace,
    attempt: 0,
  };
  return {
    metadata,
    hostname: "",
    logDirectory: "",
    dnsConfig: null,
    portMappings: [],
    labels: {
      "io.kubernetes.pod.name": identity.podName,
      "io.kubernetes.pod.namespace": identity.podNamespace,
      "io.kubernetes.pod.uid": identity.podUid,
    },
    annotations: {},
    hostNetwork: false,
    cgroupParent: "",
    sysctls: {},
    runtimeHandler: "",
  };
}

/** Rebuilds the container's stream from its CT: its state from the CT's and the node's. */
async function adoptFrom(
  registry: Registry,
  node: NodeAdapter,
  vmid: number,
  status: string,
  identity: CtIdentity,
  adoption: CtAdoption,
): Promise<void> {
  const processes = node.processes;
  const exit = processes?.exitOf(identity.containerId);
  if (
    exit === undefined && status === "running" &&
    processes?.monitorAlive(identity.containerId) === false
  ) {
    throw new FailedPreconditionError("its CT runs without a monitor: its exit could not be seen");
  }
  // Its pod lost with it (nothing in the log names it): taken back first, NotReady.
  if (
    registry.get(identity.sandboxId) === undefined && !registry.store.streamInfo(identity.sandboxId)
  ) {
    await adoptSandbox(registry, {
      id: identity.sandboxId,
      metadata: {
        name: identity.podName,
        uid: identity.podUid,
        namespace: identity.podNamespace,
        attempt: 0,
      },
      config: adoptedSandboxSpec(identity),
      createdAt: adoption.createdAt,
    });
  }
  await adoptContainer(registry, {
    id: identity.containerId,
    sandboxId: identity.sandboxId,
    metadata: { name: identity.name, attempt: identity.attempt },
    image: adoption.image,
    imageId: adoption.imageId,
    template: adoption.template,
    vmid,
    config: adoption.config,
    createdAt: adoption.createdAt,
    ...(exit !== undefined
      ? { state: "exited" as const, exit }
      : { state: status === "running" ? "running" as const : "created" as const }),
  });
}

/**
 * Runs a repairing pass after `firstDelayMs` and every `intervalMs`; returns the stop. The
 * first waits so that serving starts first: a pass over thousands of CTs is a busy moment.
 */
export function startReconciler(
  reconciler: Reconciler,
  intervalMs: number,
  log: Logger,
  firstDelayMs = 1000,
): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pass = async () => {
    try {
      await reconciler.run({ repair: true });
    } catch (error) {
      log.warn("reconciliation failed", { error: errorMessage(error) });
    }
    if (!stopped && intervalMs > 0) timer = setTimeout(pass, intervalMs);
  };
  timer = setTimeout(pass, firstDelayMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
