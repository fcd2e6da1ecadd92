/**
 * The pod sandbox lifecycle. Every transition records its event into the context; the named
 * effects (bound by the registry) run on state entry or on a transition, and their results
 * come back as events. Settled states are where a CRI call can answer.
 */
import { assign, setup } from "xstate";
import type { DomainEvent } from "./events.ts";
import { evolveSandbox, initialSandboxContext, type SandboxContext } from "./sandbox_context.ts";

/** Effects are bound by the registry; here they are only names. */
const effect = () => {};

export const sandboxMachine = setup({
  types: {
    context: {} as SandboxContext,
    events: {} as DomainEvent,
    input: {} as { id: string },
  },
  actions: {
    record: assign(({ context, event }) => evolveSandbox(context, event)),
    pinNamespaces: effect,
    addNetwork: effect,
    delNetwork: effect,
    unpinNamespaces: effect,
    stopContainers: effect,
    removeContainers: effect,
  },
  guards: {
    hasNetworks: ({ context }) => context.networks.length > 0,
    /** On CniAdded: another network remains after this one. */
    moreNetworksToAdd: ({ context }) => context.attached.length + 1 < context.networks.length,
    /** On CniDeleted / CniDelFailed: another attachment remains after this one. */
    moreNetworksToDelete: ({ context }) => context.attached.length > 1,
    hasAttached: ({ context }) => context.attached.length > 0,
    removeRequested: ({ context }) => context.removeRequested,
  },
}).createMachine({
  id: "sandbox",
  initial: "new",
  context: ({ input }) => initialSandboxContext(input.id),
  states: {
    new: {
      on: {
        SandboxRequested: { target: "pinning", actions: "record" },
        SandboxAdopted: { target: "adopted", actions: "record" },
      },
    },
    /**
     * Taken back from its containers' CTs after the log lost it: NotReady (its network and
     * config are not on record), its containers adopted into it; the kubelet stops and
     * removes it (each step tolerates what is already gone).
     */
    adopted: {
      tags: ["settled"],
      on: {
        ContainerAdmitted: { actions: "record" },
        SandboxStopRequested: { target: "stoppingContainers", actions: "record" },
        SandboxRemoveRequested: { target: "stoppingContainers", actions: "record" },
      },
    },
    pinning: {
      entry: "pinNamespaces",
      on: {
        NamespacesPinned: [
          { guard: "hasNetworks", target: "networking", actions: "record" },
          { target: "ready", actions: "record" },
        ],
        NamespacesPinFailed: { target: "unpinningAfterFailure", actions: "record" },
      },
    },
    networking: {
      entry: "addNetwork",
      on: {
        CniAddStarted: { actions: "record" },
        CniAdded: [
          { guard: "moreNetworksToAdd", actions: ["record", "addNetwork"] },
          { target: "ready", actions: "record" },
        ],
        CniAddFailed: { target: "rollingBackNetwork", actions: "record" },
      },
    },
    rollingBackNetwork: {
      entry: "delNetwork",
      on: {
        CniDeleted: [
          { guard: "moreNetworksToDelete", actions: ["record", "delNetwork"] },
          { target: "unpinningAfterFailure", actions: "record" },
        ],
        // Rollback goes on past a failed DEL; the leak stays recorded.
        CniDelFailed: [
          { guard: "moreNetworksToDelete", actions: ["record", "delNetwork"] },
          { target: "unpinningAfterFailure", actions: "record" },
        ],
      },
    },
    unpinningAfterFailure: {
      entry: "unpinNamespaces",
      on: {
        NamespacesUnpinned: { target: "failed", actions: "record" },
        NamespacesUnpinFailed: { target: "failed", actions: "record" },
      },
    },
    failed: { type: "final" },
    ready: {
      tags: ["settled"],
      on: {
        ContainerAdmitted: { actions: "record" },
        SandboxStopRequested: { target: "stoppingContainers", actions: "record" },
        SandboxRemoveRequested: { target: "stoppingContainers", actions: "record" },
        NamespacesLost: { target: "namespacesLost", actions: "record" },
        NetworkLost: { target: "networkLost", actions: "record" },
      },
    },
    /**
     * Its namespaces went behind pve-cri's back: NotReady, no new containers; the kubelet stops
     * and removes it (each step tolerates what is already gone).
     */
    namespacesLost: {
      tags: ["settled"],
      on: {
        SandboxStopRequested: { target: "stoppingContainers", actions: "record" },
        SandboxRemoveRequested: { target: "stoppingContainers", actions: "record" },
      },
    },
    /** Its pod network went (an interface deleted behind pve-cri's back): as namespacesLost. */
    networkLost: {
      tags: ["settled"],
      on: {
        SandboxStopRequested: { target: "stoppingContainers", actions: "record" },
        SandboxRemoveRequested: { target: "stoppingContainers", actions: "record" },
      },
    },
    stoppingContainers: {
      entry: "stopContainers",
      on: {
        ContainersStopped: [
          { guard: "hasAttached", target: "removingNetwork", actions: "record" },
          { target: "unpinning", actions: "record" },
        ],
        ContainersStopFailed: { target: "stopFailed", actions: "record" },
      },
    },
    removingNetwork: {
      entry: "delNetwork",
      on: {
        CniDeleted: [
          { guard: "moreNetworksToDelete", actions: ["record", "delNetwork"] },
          { target: "unpinning", actions: "record" },
        ],
        CniDelFailed: { target: "stopFailed", actions: "record" },
      },
    },
    unpinning: {
      entry: "unpinNamespaces",
      on: {
        NamespacesUnpinned: [
          { guard: "removeRequested", target: "removingContainers", actions: "record" },
          { target: "notready", actions: "record" },
        ],
        NamespacesUnpinFailed: { target: "stopFailed", actions: "record" },
      },
    },
    /** A stop step failed; StopPodSandbox or RemovePodSandbox tries again from the top. */
    stopFailed: {
      tags: ["settled"],
      on: {
        SandboxStopRequested: { target: "stoppingContainers", actions: "record" },
        SandboxRemoveRequested: { target: "stoppingContainers", actions: "record" },
      },
    },
    notready: {
      tags: ["settled"],
      on: {
        SandboxRemoveRequested: { target: "removingContainers", actions: "record" },
      },
    },
    removingContainers: {
      entry: "removeContainers",
      on: {
        ContainersRemoved: { target: "removed", actions: "record" },
        ContainersRemoveFailed: { target: "notready", actions: "record" },
      },
    },
    removed: { type: "final" },
  },
});

export type SandboxState = keyof typeof sandboxMachine.config.states;
