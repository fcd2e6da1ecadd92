/**
 * Plausible payloads for every event type, consistent with a stream's context (the next
 * network for CniAdded, a hook of the current stage for HookFinished, …).
 */
import type { ContainerContext } from "../../machines/container_context.ts";
import { hooksOfStage } from "../../machines/container_context.ts";
import {
  catalog,
  type EventType,
  type NewEvent,
  type Payload,
  type StreamKind,
} from "../../machines/events.ts";
import { lastAttached, nextNetwork, type SandboxContext } from "../../machines/sandbox_context.ts";
import type { ImageContext } from "../../machines/image_context.ts";
import type { Random } from "./random.ts";

const stages = ["start", "poststart", "poststop"] as const;

export function samplePayload(
  type: EventType,
  context: SandboxContext | ContainerContext | ImageContext,
  random: Random,
): NewEvent {
  const isSandbox = "networks" in context;
  const isContainer = "hooks" in context;
  const s = context as SandboxContext;
  const c = context as ContainerContext;
  const fallback = { name: "net0", ifname: "eth0" };
  const net = (isSandbox ? nextNetwork(s) : undefined) ?? fallback;
  const attached = (isSandbox ? lastAttached(s) : undefined) ?? fallback;
  const stage = random.pick(stages);
  const hook = (isContainer ? hooksOfStage(c, stage)[0]?.name : undefined) ?? "hook";
  const imageContent = {
    imageId: `sha256:${random.hex(64)}`,
    manifestDigest: `sha256:${random.hex(64)}`,
    config: { digest: `sha256:${random.hex(64)}`, size: 600 },
    layers: [{
      digest: `sha256:${random.hex(64)}`,
      size: 1000 + random.int(1000),
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    }],
    size: 2000,
    platform: "linux/amd64",
    imageConfig: {
      user: "1000",
      env: ["PATH=/bin"],
      entrypoint: [],
      cmd: ["/bin/sh"],
      workingDir: "",
      stopSignal: "",
      volumes: [],
      exposedPorts: [],
      labels: {},
    },
  };
  const data: { [T in EventType]: Payload<T> } = {
    SandboxRequested: {
      metadata: {
        name: `pod-${random.hex(4)}`,
        uid: random.hex(8),
        namespace: "default",
        attempt: random.int(3),
      },
      networks: Array.from(
        { length: random.int(3) },
        (_, i) => ({ name: `net${i}`, ifname: `eth${i}` }),
      ),
      runtimeHandler: "",
      config: { hostname: "pod" },
    },
    NamespacesPinned: { paths: { net: "/run/netns/x", ipc: "/run/ipcns/x", uts: "/run/utsns/x" } },
    NamespacesPinFailed: { error: "unshare failed" },
    CniAddStarted: net,
    CniAdded: { ...net, result: { ips: [{ address: "10.88.0.2/16" }] } },
    CniAddFailed: { ...net, error: "plugin failed", code: "Unavailable" },
    ContainerAdmitted: { containerId: random.hex(64), name: "c", attempt: 0 },
    SandboxStopRequested: {},
    ContainersStopped: { containerIds: s.containers?.map((x) => x.id) ?? [] },
    ContainersStopFailed: { error: "stop failed" },
    CniDeleted: { name: attached.name, ifname: attached.ifname },
    CniDelFailed: { name: attached.name, ifname: attached.ifname, error: "del failed" },
    NamespacesUnpinned: {},
    NamespacesUnpinFailed: { error: "busy" },
    SandboxAdopted: {
      metadata: { name: "web", uid: "u-1", namespace: "default", attempt: 0 },
      config: { labels: { "io.kubernetes.pod.name": "web" } },
      createdAt: 1_700_000_000_000,
    },
    NamespacesLost: { missing: ["net"] },
    NetworkLost: { missing: ["eth0"] },
    SandboxRemoveRequested: {},
    ContainersRemoved: { containerIds: s.containers?.map((x) => x.id) ?? [] },
    ContainersRemoveFailed: { error: "remove failed" },
    ContainerRequested: {
      sandboxId: random.hex(64),
      metadata: { name: `c-${random.hex(4)}`, attempt: random.int(2) },
      image: "busybox:latest",
      envs: [{ key: "SECRET", value: "hunter2" }],
      hooks: ["createRuntime", "prestart", "poststart", "poststop"]
        .filter(() => random.chance(0.5))
        .map((phase) => ({ phase, name: `${phase}-hook`, path: "/bin/true" })),
      config: { command: ["/bin/sh"] },
    },
    ContainerAdopted: {
      sandboxId: random.hex(64),
      metadata: { name: `c-${random.hex(4)}`, attempt: random.int(2) },
      image: "busybox:latest",
      imageId: `sha256:${random.hex(64)}`,
      template: "local:vztmpl/busybox.tar",
      vmid: 100 + random.int(900),
      config: { command: ["/bin/sh"], labels: {} },
      createdAt: 1_700_000_000_000,
      state: random.pick(["created", "running", "exited"] as const),
    },
    ImageResolved: {
      imageId: `sha256:${random.hex(64)}`,
      template: "local:vztmpl/busybox_latest.tar",
    },
    ImageResolveFailed: { error: "no such image", code: "NotFound" },
    VmidAllocated: { vmid: 100 + random.int(1000) },
    VmidAllocateFailed: { error: "no free vmid" },
    PveTaskStarted: {
      upid: "UPID:pve1:00001234:00005678:6650F3A1:vzcreate:101:root@pam!cri:",
      operation: "create",
    },
    PveTaskFailed: { operation: "create", error: "task failed" },
    CtCreated: { vmid: c.vmid ?? 100 },
    CtConfigured: {},
    MountsApplied: { includeFile: "/var/lib/pve-cri/node/includes/c1.conf", mounts: 3 },
    CtConfigureFailed: { error: "config failed" },
    HookStarted: { stage, name: hook },
    HookFinished: { stage, name: hook },
    HookFailed: { stage, name: hook, error: "exit status 1" },
    HooksCompleted: { stage },
    ContainerStartRequested: {},
    ContainerStarted: { startedAt: 1_700_000_000_000 + random.int(1000), pid: 4242 },
    ContainerStartFailed: { error: "start failed" },
    ContainerStopRequested: { timeoutSeconds: random.int(30) },
    StopTimeoutElapsed: {},
    ExecFinished: { command: ["sh"], exitCode: 3, durationMs: 25, timedOut: false },
    ContainerStopFailed: { error: "stop failed" },
    ContainerExited: {
      exitCode: random.pick([0, 1, 137, 143]),
      reason: "Completed",
      finishedAt: 1_700_000_001_000,
    },
    ContainerResourcesRequested: { resources: { memoryMiB: 128, cpulimit: 0.5 } },
    ContainerResourcesUpdated: { resources: { memoryMiB: 128, cpulimit: 0.5 } },
    ContainerResourcesUpdateFailed: { error: "hotplug failed" },
    ContainerRemoveRequested: {},
    CtDestroyed: {},
    CtDestroyFailed: { error: "destroy failed" },
    ImagePullStarted: {
      reference: "registry.local:5000/app:v1",
      registry: "registry.local:5000",
      digest: `sha256:${random.hex(64)}`,
      ...imageContent,
    },
    ImageImportStarted: { archive: "/srv/images/app.tar", format: "oci", ...imageContent },
    ImageContentStored: {},
    ImageContentFailed: { error: "blob does not match its digest", code: "DataLoss" },
    ImageTemplateStored: { volid: `local:vztmpl/pve-cri-${random.hex(64)}.tar`, uploaded: true },
    ImageTemplateFailed: { error: "upload failed", code: "Unavailable" },
    ImageTagged: { repoTags: [`registry.local:5000/app:${random.hex(3)}`], repoDigests: [] },
    ImageUntagged: { repoTags: ["registry.local:5000/app:v1"], repoDigests: [] },
    ImageRemoveRequested: {},
    ImageRemoved: {},
    ImageRemoveFailed: { error: "template is busy" },
  };
  return { type, data: data[type] } as NewEvent;
}

export function eventTypesOf(kind: StreamKind): EventType[] {
  return (Object.keys(catalog) as EventType[]).filter((t) => catalog[t].kind === kind);
}
