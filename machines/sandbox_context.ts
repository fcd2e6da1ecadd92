/**
 * What a sandbox stream remembers, and how each event changes it (the decider's evolve).
 * The machine assigns this on every transition, so the fold is the same in XState and in
 * the compiled table.
 */
import type { Infer } from "../lib/shape.ts";
import type { DomainEvent, networkAttachment, podMetadata } from "./events.ts";

export type PodMetadata = Infer<typeof podMetadata>;
export type NetworkAttachment = Infer<typeof networkAttachment>;

export interface AttachedNetwork extends NetworkAttachment {
  /** The CNI result; absent when the ADD failed (it is still DELeted on rollback). */
  result?: unknown;
}

export interface ContainerRef {
  id: string;
  name: string;
  attempt: number;
}

export interface StepError {
  event: string;
  error: string;
  code?: string;
}

export interface SandboxContext {
  id: string;
  metadata: PodMetadata;
  runtimeHandler: string;
  config: unknown;
  /** Networks to attach, in order. */
  networks: NetworkAttachment[];
  /** Networks ADDed (or tried) and not DELeted yet, in attach order. */
  attached: AttachedNetwork[];
  /** A CNI ADD recorded as started with no result yet: after a crash, check before redoing. */
  addInFlight: NetworkAttachment | null;
  namespaces: Record<string, string> | null;
  containers: ContainerRef[];
  removeRequested: boolean;
  createdAt: number;
  lastError: StepError | null;
  /** What a rollback could not clean up, for the operator. */
  leaks: string[];
}

export function initialSandboxContext(id: string): SandboxContext {
  return {
    id,
    metadata: { name: "", uid: "", namespace: "", attempt: 0 },
    runtimeHandler: "",
    config: null,
    networks: [],
    attached: [],
    addInFlight: null,
    namespaces: null,
    containers: [],
    removeRequested: false,
    createdAt: 0,
    lastError: null,
    leaks: [],
  };
}

const sameNetwork = (a: NetworkAttachment, b: NetworkAttachment) =>
  a.name === b.name && a.ifname === b.ifname;

export function evolveSandbox(context: SandboxContext, event: DomainEvent): SandboxContext {
  switch (event.type) {
    case "SandboxRequested":
      return {
        ...context,
        metadata: event.data.metadata,
        runtimeHandler: event.data.runtimeHandler,
        config: event.data.config,
        networks: event.data.networks,
        createdAt: event.time,
      };
    case "SandboxAdopted":
      return {
        ...context,
        metadata: event.data.metadata,
        config: event.data.config,
        createdAt: event.data.createdAt,
      };
    case "NamespacesPinned":
      return { ...context, namespaces: event.data.paths };
    case "CniAddStarted":
      return { ...context, addInFlight: event.data };
    case "CniAdded": {
      const { name, ifname, result } = event.data;
      return {
        ...context,
        addInFlight: null,
        attached: [...context.attached, { name, ifname, result }],
      };
    }
    case "CniAddFailed": {
      // A failed ADD may have left an interface behind: it is DELeted like the others.
      const { name, ifname } = event.data;
      return {
        ...context,
        addInFlight: null,
        attached: [...context.attached, { name, ifname }],
        lastError: failure(event),
      };
    }
    case "CniDeleted":
      return { ...context, attached: withoutNetwork(context.attached, event.data) };
    case "CniDelFailed": {
      const net = `${event.data.name}/${event.data.ifname}`;
      return {
        ...context,
        attached: withoutNetwork(context.attached, event.data),
        // In a rollback the cause stays the error; what the rollback left is a leak.
        lastError: context.lastError ?? failure(event),
        leaks: [...context.leaks, `CNI attachment ${net}: ${event.data.error}`],
      };
    }
    case "NamespacesUnpinned":
      return { ...context, namespaces: null };
    case "NamespacesUnpinFailed":
      return {
        ...context,
        lastError: context.lastError ?? failure(event),
        leaks: [...context.leaks, `pinned namespaces: ${event.data.error}`],
      };
    case "NamespacesLost":
      return {
        ...context,
        lastError: {
          event: event.type,
          error: `pinned namespaces gone behind pve-cri's back: ${event.data.missing.join(", ")}`,
          code: "FailedPrecondition",
        },
      };
    case "ContainerAdmitted": {
      const { containerId, name, attempt } = event.data;
      return {
        ...context,
        containers: [...context.containers, { id: containerId, name, attempt }],
      };
    }
    case "SandboxRemoveRequested":
      return { ...context, removeRequested: true };
    case "NamespacesPinFailed":
    case "ContainersStopFailed":
    case "ContainersRemoveFailed":
      return { ...context, lastError: failure(event) };
    case "SandboxStopRequested":
    case "ContainersStopped":
    case "ContainersRemoved":
      return { ...context, lastError: null };
    default:
      return context;
  }
}

function withoutNetwork(list: AttachedNetwork[], net: NetworkAttachment): AttachedNetwork[] {
  const index = list.findLastIndex((n) => sameNetwork(n, net));
  return index < 0 ? list : [...list.slice(0, index), ...list.slice(index + 1)];
}

function failure(event: DomainEvent): StepError {
  const data = event.data as { error: string; code?: string };
  return data.code === undefined
    ? { event: event.type, error: data.error }
    : { event: event.type, error: data.error, code: data.code };
}

/** The network the next CNI ADD is for. */
export function nextNetwork(context: SandboxContext): NetworkAttachment | undefined {
  return context.networks.find((n) => !context.attached.some((a) => sameNetwork(a, n)));
}

/** The attachment the next CNI DEL is for: the last one attached (DEL runs in reverse). */
export function lastAttached(context: SandboxContext): AttachedNetwork | undefined {
  return context.attached.at(-1);
}
