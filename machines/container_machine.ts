/**
 * The container lifecycle: image → VMID → CT → config → created → start (hooks) → running →
 * stop (grace period, then kill) → exited → removed, with the rollback of a failed create.
 * Effects are names bound by the registry; their results come back as events.
 */
import { assign, setup } from "xstate";
import { evolveContainer, hooksOfStage, initialContainerContext } from "./container_context.ts";
import type { ContainerContext, HookStage } from "./container_context.ts";
import type { DomainEvent } from "./events.ts";

/** Effects are bound by the registry; here they are only names. */
const effect = () => {};

/** Limits change in place (Proxmox hot-plugs them) while the container is created or runs. */
const resourceUpdates = {
  ContainerResourcesRequested: { actions: ["record", "updateResources"] },
  ContainerResourcesUpdated: { actions: "record" },
  ContainerResourcesUpdateFailed: { actions: "record" },
} as const;

export const containerMachine = setup({
  types: {
    context: {} as ContainerContext,
    events: {} as DomainEvent,
    input: {} as { id: string },
  },
  actions: {
    record: assign(({ context, event }) => evolveContainer(context, event)),
    resolveImage: effect,
    allocateVmid: effect,
    createCt: effect,
    configureCt: effect,
    runHooks: effect,
    startCt: effect,
    signalStop: effect,
    armStopTimer: effect,
    killCt: effect,
    destroyCt: effect,
    updateResources: effect,
  },
  guards: {
    hasHooks: ({ context }, params: { stage: HookStage }) =>
      hooksOfStage(context, params.stage).length > 0,
    removeRequested: ({ context }) => context.removeRequested,
    adoptedAs: ({ event }, params: { state: string }) =>
      event.type === "ContainerAdopted" && event.data.state === params.state,
    /** The process ended while poststart hooks ran. */
    hasExited: ({ context }) => context.finishedAt !== null,
  },
}).createMachine({
  id: "container",
  initial: "new",
  context: ({ input }) => initialContainerContext(input.id),
  states: {
    new: {
      on: {
        ContainerRequested: { target: "resolvingImage", actions: "record" },
        ContainerAdopted: [
          {
            guard: { type: "adoptedAs", params: { state: "running" } },
            target: "running",
            actions: "record",
          },
          {
            guard: { type: "adoptedAs", params: { state: "exited" } },
            target: "exited",
            actions: "record",
          },
          { target: "created", actions: "record" },
        ],
      },
    },
    resolvingImage: {
      entry: "resolveImage",
      on: {
        ImageResolved: { target: "allocatingVmid", actions: "record" },
        ImageResolveFailed: { target: "failed", actions: "record" },
      },
    },
    allocatingVmid: {
      entry: "allocateVmid",
      on: {
        VmidAllocated: { target: "creatingCt", actions: "record" },
        VmidAllocateFailed: { target: "failed", actions: "record" },
      },
    },
    creatingCt: {
      entry: "createCt",
      on: {
        PveTaskStarted: { actions: "record" },
        // Another create took the VMID first: the effect records a new one and goes on.
        VmidAllocated: { actions: "record" },
        CtCreated: { target: "configuringCt", actions: "record" },
        PveTaskFailed: { target: "rollingBack", actions: "record" },
      },
    },
    configuringCt: {
      entry: "configureCt",
      on: {
        MountsApplied: { actions: "record" },
        CtConfigured: { target: "created", actions: "record" },
        CtConfigureFailed: { target: "rollingBack", actions: "record" },
      },
    },
    /** A create step failed: destroy whatever CT exists, then fail. */
    rollingBack: {
      entry: "destroyCt",
      on: {
        PveTaskStarted: { actions: "record" },
        CtDestroyed: { target: "failed", actions: "record" },
        CtDestroyFailed: { target: "failed", actions: "record" },
      },
    },
    failed: { type: "final" },
    created: {
      tags: ["settled"],
      on: {
        ...resourceUpdates,
        ContainerStartRequested: { target: "startingCt", actions: "record" },
        ContainerRemoveRequested: { target: "removing", actions: "record" },
      },
    },
    /**
     * The CT starts (its init idles in its namespaces), the `start` stage's hooks run given
     * that init, then the app is launched; a failed hook stops the CT (ContainerStartFailed).
     */
    startingCt: {
      entry: "startCt",
      on: {
        PveTaskStarted: { actions: "record" },
        HookStarted: { actions: "record" },
        HookFinished: { actions: "record" },
        HookFailed: { actions: "record" },
        HooksCompleted: { actions: "record" },
        ContainerStarted: [
          {
            guard: { type: "hasHooks", params: { stage: "poststart" } },
            target: "poststartHooks",
            actions: "record",
          },
          { target: "running", actions: "record" },
        ],
        ContainerStartFailed: { target: "exited", actions: "record" },
      },
    },
    /** Poststart hook failures are warnings (OCI runtime spec); an exit is remembered. */
    poststartHooks: {
      entry: { type: "runHooks", params: { stage: "poststart" } },
      on: {
        HookStarted: { actions: "record" },
        HookFinished: { actions: "record" },
        HookFailed: { actions: "record" },
        ContainerExited: { actions: "record" },
        HooksCompleted: [
          { guard: "hasExited", target: "exited", actions: "record" },
          { target: "running", actions: "record" },
        ],
      },
    },
    running: {
      tags: ["settled"],
      on: {
        ...resourceUpdates,
        ExecFinished: { actions: "record" },
        ContainerStopRequested: { target: "stopping", actions: "record" },
        ContainerExited: { target: "exited", actions: "record" },
        ContainerRemoveRequested: { target: "killing", actions: "record" },
      },
    },
    stopping: {
      entry: ["signalStop", "armStopTimer"],
      on: {
        PveTaskStarted: { actions: "record" },
        StopTimeoutElapsed: { target: "killing", actions: "record" },
        ContainerExited: [
          { guard: "removeRequested", target: "removing", actions: "record" },
          { target: "exited", actions: "record" },
        ],
        ContainerStopFailed: { target: "running", actions: "record" },
      },
    },
    killing: {
      entry: "killCt",
      on: {
        PveTaskStarted: { actions: "record" },
        ContainerExited: [
          { guard: "removeRequested", target: "removing", actions: "record" },
          { target: "exited", actions: "record" },
        ],
        ContainerStopFailed: { target: "running", actions: "record" },
      },
    },
    exited: {
      tags: ["settled"],
      on: {
        ContainerRemoveRequested: { target: "removing", actions: "record" },
      },
    },
    removing: {
      entry: "destroyCt",
      on: {
        PveTaskStarted: { actions: "record" },
        CtDestroyed: [
          {
            guard: { type: "hasHooks", params: { stage: "poststop" } },
            target: "poststopHooks",
            actions: "record",
          },
          { target: "removed", actions: "record" },
        ],
        CtDestroyFailed: { target: "removeFailed", actions: "record" },
      },
    },
    /** Destroying the CT failed; RemoveContainer tries again. */
    removeFailed: {
      tags: ["settled"],
      on: {
        ContainerRemoveRequested: { target: "removing", actions: "record" },
      },
    },
    /** Poststop hooks run after the CT is gone (OCI: after delete); failures are warnings. */
    poststopHooks: {
      entry: { type: "runHooks", params: { stage: "poststop" } },
      on: {
        HookStarted: { actions: "record" },
        HookFinished: { actions: "record" },
        HookFailed: { actions: "record" },
        HooksCompleted: { target: "removed", actions: "record" },
      },
    },
    removed: { type: "final" },
  },
});
