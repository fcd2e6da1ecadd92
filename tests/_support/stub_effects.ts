/**
 * Effect handlers over a small in-memory world (pinned namespaces, CNI attachments, CTs, hook
 * runs), with seeded failures and delays. The world outlives a registry "crash", as Proxmox
 * and the node do, so resumed effects meet what the crashed ones left behind. Handlers are
 * idempotent and keyed as the real adapters must be.
 */
import type { ContainerContext } from "../../machines/container_context.ts";
import { hooksOfStage, type HookStage } from "../../machines/container_context.ts";
import type { AdapterEffectHandlers } from "../../machines/effects.ts";
import { lastAttached, nextNetwork } from "../../machines/sandbox_context.ts";
import type { Random } from "./random.ts";

export interface StubOptions {
  random: Random;
  /** Probability that a fallible step fails. */
  failureRate?: number;
  /** Probability that a container ignores SIGTERM (so the grace period runs out). */
  ignoreSigterm?: number;
  /** Milliseconds per second of a CRI grace period: keeps tests fast. */
  msPerSecond?: number;
  /** Largest delay of a step, in ms (0 = next microtask). */
  maxDelayMs?: number;
}

export interface StubCt {
  containerId: string;
  running: boolean;
}

export class StubWorld {
  readonly namespaces = new Set<string>();
  /** `sandboxId/network/ifname` */
  readonly attachments = new Set<string>();
  readonly cts = new Map<number, StubCt>();
  readonly hookRuns: string[] = [];
  /** Times the resolveImage effect ran. */
  imageLookups = 0;
  nextVmid = 100;

  isEmpty(): boolean {
    return this.namespaces.size === 0 && this.attachments.size === 0 && this.cts.size === 0;
  }
}

class InjectedFailure extends Error {}

export function stubEffects(world: StubWorld, options: StubOptions): AdapterEffectHandlers {
  const { random } = options;
  const failureRate = options.failureRate ?? 0;
  const ignoreSigterm = options.ignoreSigterm ?? 0;
  const msPerSecond = options.msPerSecond ?? 1;
  const maxDelay = options.maxDelayMs ?? 1;

  // A crash kills work in flight: after a pause, an aborted effect changes nothing more.
  const pause = async (signal: AbortSignal) => {
    const ms = random.int(maxDelay + 1);
    if (ms === 0) await Promise.resolve();
    else await new Promise((resolve) => setTimeout(resolve, ms));
    if (signal.aborted) throw signal.reason;
  };
  const mayFail = (what: string) => {
    if (random.chance(failureRate)) throw new InjectedFailure(`injected failure: ${what}`);
  };
  const sleep = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, Math.max(0, ms));
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(signal.reason);
      }, { once: true });
    });

  const runHooks = async (
    context: ContainerContext,
    stage: HookStage,
    emit: (e: never) => Promise<void>,
    signal: AbortSignal,
  ) => {
    // Warnings only after the app started (OCI: poststart, poststop).
    const fatal = stage === "start";
    for (const hook of hooksOfStage(context, stage)) {
      if (context.hooksDone.includes(hook.name)) continue;
      await emit({ type: "HookStarted", data: { stage, name: hook.name } } as never);
      await pause(signal);
      world.hookRuns.push(`${context.id}/${stage}/${hook.name}`);
      if (random.chance(failureRate)) {
        const failed = {
          type: "HookFailed",
          data: { stage, name: hook.name, error: "exit status 1" },
        };
        if (fatal) return failed;
        await emit(failed as never);
        continue;
      }
      await emit({ type: "HookFinished", data: { stage, name: hook.name } } as never);
    }
    return { type: "HooksCompleted", data: { stage } };
  };

  return {
    sandbox: {
      async pinNamespaces({ stream, signal }) {
        await pause(signal);
        mayFail("pin namespaces");
        world.namespaces.add(stream);
        const paths = {
          net: `/run/netns/${stream}`,
          ipc: `/run/ipcns/${stream}`,
          uts: `/run/utsns/${stream}`,
        };
        return { type: "NamespacesPinned", data: { paths } };
      },
      async addNetwork({ stream, context, emit, signal }) {
        const net = nextNetwork(context)!;
        const key = `${stream}/${net.name}/${net.ifname}`;
        // After a crash mid-ADD, check what the plugin left instead of adding blindly.
        const inFlight = context.addInFlight;
        if (
          inFlight?.name === net.name && inFlight.ifname === net.ifname &&
          world.attachments.has(key)
        ) {
          return { type: "CniAdded", data: { ...net, result: { checked: true } } };
        }
        await emit({ type: "CniAddStarted", data: net });
        await pause(signal);
        // A failing ADD may leave the interface behind: rollback must DEL it.
        if (random.chance(failureRate)) {
          if (random.chance(0.5)) world.attachments.add(key);
          throw new InjectedFailure(`injected failure: CNI ADD ${key}`);
        }
        world.attachments.add(key);
        return { type: "CniAdded", data: { ...net, result: { ips: ["10.88.0.2/16"] } } };
      },
      async delNetwork({ stream, context, signal }) {
        const net = lastAttached(context)!;
        await pause(signal);
        mayFail(`CNI DEL ${net.name}`);
        world.attachments.delete(`${stream}/${net.name}/${net.ifname}`);
        return { type: "CniDeleted", data: { name: net.name, ifname: net.ifname } };
      },
      async unpinNamespaces({ stream, signal }) {
        await pause(signal);
        mayFail("unpin namespaces");
        world.namespaces.delete(stream);
        return { type: "NamespacesUnpinned", data: {} };
      },
    },
    container: {
      async resolveImage({ context, signal }) {
        world.imageLookups++;
        await pause(signal);
        mayFail(`resolve ${context.image}`);
        return {
          type: "ImageResolved",
          data: {
            imageId: `sha256:${"ab".repeat(32)}`,
            template: `local:vztmpl/${context.image}.tar`,
          },
        };
      },
      async allocateVmid({ signal }) {
        await pause(signal);
        mayFail("allocate vmid");
        return { type: "VmidAllocated", data: { vmid: world.nextVmid++ } };
      },
      async createCt({ context, emit, signal }) {
        const vmid = context.vmid!;
        if (world.cts.has(vmid)) return { type: "CtCreated", data: { vmid } };
        if (context.task === null) {
          await emit({
            type: "PveTaskStarted",
            data: { upid: `UPID:stub:${vmid}:vzcreate`, operation: "create" },
          });
        }
        await pause(signal);
        mayFail(`create CT ${vmid}`);
        world.cts.set(vmid, { containerId: context.id, running: false });
        return { type: "CtCreated", data: { vmid } };
      },
      async configureCt({ signal }) {
        await pause(signal);
        mayFail("configure CT");
        return { type: "CtConfigured", data: {} };
      },
      runHooks: ({ context, params, emit, signal }) =>
        runHooks(context, params!.stage as HookStage, emit as never, signal) as never,
      async startCt({ context, emit, signal }) {
        const ct = world.cts.get(context.vmid!);
        if (ct === undefined) throw new Error(`CT ${context.vmid} does not exist`);
        if (!ct.running) {
          await emit({
            type: "PveTaskStarted",
            data: { upid: `UPID:stub:${context.vmid}:vzstart`, operation: "start" },
          });
          await pause(signal);
          mayFail(`start CT ${context.vmid}`);
          ct.running = true;
        }
        // The start stage's hooks run once the CT runs, before the app (as the real effect).
        const hooks = await runHooks(context, "start", emit as never, signal);
        if (hooks.type === "HookFailed") {
          await emit(hooks as never);
          ct.running = false;
          return { type: "ContainerStartFailed", data: { error: "a start hook failed" } };
        }
        return {
          type: "ContainerStarted",
          data: { startedAt: Date.now(), pid: 1000 + context.vmid! },
        };
      },
      async signalStop({ context, signal }) {
        const ct = world.cts.get(context.vmid!);
        if (ct?.running && random.chance(ignoreSigterm)) {
          // Ignores SIGTERM: only the grace period's end (killCt) stops it.
          await sleep(60_000, signal);
        }
        await pause(signal);
        if (ct) ct.running = false;
        return {
          type: "ContainerExited",
          data: { exitCode: 143, reason: "Completed", finishedAt: Date.now() },
        };
      },
      async armStopTimer({ context, signal }) {
        const deadline = context.stopRequestedAt! + context.stopTimeoutSeconds! * msPerSecond;
        await sleep(deadline - Date.now(), signal);
        return { type: "StopTimeoutElapsed", data: {} };
      },
      async killCt({ context, signal }) {
        await pause(signal);
        const ct = world.cts.get(context.vmid!);
        if (ct) ct.running = false;
        return {
          type: "ContainerExited",
          data: { exitCode: 137, reason: "Error", message: "killed", finishedAt: Date.now() },
        };
      },
      async updateResources({ context, signal }) {
        await pause(signal);
        mayFail(`update CT ${context.vmid}`);
        return { type: "ContainerResourcesUpdated", data: { resources: { memoryMiB: 64 } } };
      },
      async destroyCt({ context, signal }) {
        await pause(signal);
        if (context.vmid !== null && world.cts.has(context.vmid)) {
          mayFail(`destroy CT ${context.vmid}`);
          world.cts.delete(context.vmid);
        }
        return { type: "CtDestroyed", data: {} };
      },
    },
    image: {
      async fetchContent({ signal }) {
        await pause(signal);
        mayFail("fetch image content");
        return { type: "ImageContentStored", data: {} };
      },
      async storeTemplate({ context, signal }) {
        await pause(signal);
        mayFail("store template");
        const volid = `local:vztmpl/pve-cri-${context.manifestDigest.slice(7)}.tar`;
        return { type: "ImageTemplateStored", data: { volid, uploaded: true } };
      },
      async removeImage({ signal }) {
        await pause(signal);
        mayFail("remove image");
        return { type: "ImageRemoved", data: {} };
      },
    },
  };
}
