/**
 * Builds a realistic event log for the store benchmarks: 10,000 live streams (half
 * sandboxes, half containers), 100 legal events each, written through the real store with
 * the real projectors.
 */
import type { NewEvent } from "../machines/events.ts";
import { catalog, upcastEvent } from "../machines/events.ts";
import { projectors } from "../machines/projections.ts";
import { EventStore } from "../store/mod.ts";

const hex = (n: number, width = 64) => n.toString(16).padStart(width, "0");

/** A ready sandbox that admitted many containers: 100 events. */
function sandboxEvents(i: number): NewEvent[] {
  const events: NewEvent[] = [
    {
      type: "SandboxRequested",
      data: {
        metadata: { name: `pod-${i}`, uid: hex(i, 32), namespace: "bench", attempt: 0 },
        networks: [{ name: "pod-net", ifname: "eth0" }],
        runtimeHandler: "",
        config: { hostname: `pod-${i}`, labels: { app: "bench" } },
      },
    },
    { type: "NamespacesPinned", data: { paths: { net: `/run/netns/${i}`, ipc: "", uts: "" } } },
    { type: "CniAddStarted", data: { name: "pod-net", ifname: "eth0" } },
    {
      type: "CniAdded",
      data: { name: "pod-net", ifname: "eth0", result: { ips: [{ address: "10.88.0.2/16" }] } },
    },
  ];
  for (let c = 0; events.length < 100; c++) {
    events.push({
      type: "ContainerAdmitted",
      data: { containerId: hex(i * 1000 + c), name: `c${c}`, attempt: 0 },
    });
  }
  return events;
}

/** A container with many start hooks that ran and exited: 100 events. */
function containerEvents(i: number): NewEvent[] {
  const hooks = Array.from({ length: 44 }, (_, h) => ({
    phase: "createContainer",
    name: `hook-${h}`,
    path: "/usr/libexec/hook",
  }));
  const events: NewEvent[] = [
    {
      type: "ContainerRequested",
      data: {
        sandboxId: hex(i - 1),
        metadata: { name: `app-${i}`, attempt: 0 },
        image: "registry.local/app:1",
        envs: [{ key: "PASSWORD", value: "secret" }],
        hooks,
        config: { command: ["/app"], args: ["--serve"] },
      },
    },
    {
      type: "ImageResolved",
      data: { imageId: `sha256:${hex(i)}`, template: "local:vztmpl/app_1.tar" },
    },
    { type: "VmidAllocated", data: { vmid: 1000 + i } },
    {
      type: "PveTaskStarted",
      data: { upid: `UPID:pve:0:0:0:vzcreate:${1000 + i}:root@pam:`, operation: "create" },
    },
    { type: "CtCreated", data: { vmid: 1000 + i } },
    { type: "CtConfigured", data: {} },
    { type: "ContainerStartRequested", data: {} },
    {
      type: "PveTaskStarted",
      data: { upid: `UPID:pve:0:0:0:vzstart:${1000 + i}:root@pam:`, operation: "start" },
    },
  ];
  // The start stage's hooks run once the CT runs, before the app.
  for (const hook of hooks) {
    events.push({ type: "HookStarted", data: { stage: "start", name: hook.name } });
    events.push({ type: "HookFinished", data: { stage: "start", name: hook.name } });
  }
  events.push(
    { type: "ContainerStarted", data: { startedAt: 1_700_000_000_000 + i } },
    { type: "ContainerStopRequested", data: { timeoutSeconds: 10 } },
    {
      type: "ContainerExited",
      data: { exitCode: 0, reason: "Completed", finishedAt: 1_700_000_100_000 + i },
    },
  );
  return events;
}

export function openBenchStore(path: string): EventStore {
  return EventStore.open({ path, upcast: upcastEvent, projectors });
}

/** Writes the log; returns the number of events. */
export async function buildLog(path: string, streams: number): Promise<number> {
  const store = openBenchStore(path);
  let total = 0;
  try {
    for (let i = 0; i < streams; i++) {
      const kind = i % 2 === 0 ? "sandbox" : "container";
      const events = kind === "sandbox" ? sandboxEvents(i) : containerEvents(i);
      total += events.length;
      const inputs = events.map((e) => ({
        type: e.type,
        typeVersion: catalog[e.type].version,
        data: e.data,
      }));
      // Many streams per tick: one transaction per tick (group commit).
      const append = store.appendToStream(hex(i), inputs, { kind, expectedVersion: "no_stream" });
      if (i % 200 === 199 || i === streams - 1) await append;
    }
  } finally {
    store.close();
  }
  return total;
}
