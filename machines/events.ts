/**
 * The event catalogue: every event type, the stream kind it belongs to, its current version,
 * its payload shape, how older versions are upcast, and what to redact when showing it.
 * Replay, crash injection and the README's event list all read this one table.
 */
import {
  array,
  boolean,
  type Infer,
  integer,
  json,
  literal,
  number,
  object,
  optional,
  record,
  type Shape,
  string,
} from "../lib/shape.ts";

export const streamKinds = ["sandbox", "container", "image"] as const;
export type StreamKind = (typeof streamKinds)[number];

interface EventSpec<S extends Shape<unknown>> {
  kind: StreamKind;
  version: number;
  shape: S;
  /** One line for the docs: what fact the event records. */
  doc: string;
  /** Upcasters by the version they read: `{ 1: v1 => v2 }`. */
  upcast?: Record<number, (data: unknown) => unknown>;
  /** A copy of the payload safe to show (replay output, HTTP endpoint, logs). */
  redact?: (data: Infer<S>) => Infer<S>;
}

function spec<S extends Shape<unknown>>(s: EventSpec<S>): EventSpec<S> {
  return s;
}

const failure = object({ error: string, code: optional(string) });
const empty = object({});

export const podMetadata = object({
  name: string,
  uid: string,
  namespace: string,
  attempt: integer,
});
export const networkAttachment = object({ name: string, ifname: string });
/** When hooks run: `start` holds the OCI stages before the app (see container_context.ts). */
export const hookStage = literal("start", "poststart", "poststop");
export const hookSpec = object({
  /** The OCI phase: createRuntime, createContainer, prestart, startContainer, poststart, poststop. */
  phase: string,
  name: string,
  path: string,
  args: optional(array(string)),
  env: optional(array(string)),
  timeoutSeconds: optional(integer),
});
/** How a hook run went: its exit (or signal), duration, output tails, whether it timed out. */
const hookOutcome = {
  exitCode: optional(integer),
  signal: optional(string),
  durationMs: optional(integer),
  stdout: optional(string),
  stderr: optional(string),
  timedOut: optional(boolean),
};
const keyValue = object({ key: string, value: string });
/** Limits in Proxmox's units: MiB, cores (0 = unlimited), shares. */
export const resourceLimits = object({
  memoryMiB: optional(integer),
  swapMiB: optional(integer),
  cpulimit: optional(number),
  cpuunits: optional(integer),
});

/** What a container gets from its image: the parts of the image config the CRI uses. */
export const imageConfig = object({
  user: string,
  env: array(string),
  entrypoint: array(string),
  cmd: array(string),
  workingDir: string,
  stopSignal: string,
  volumes: array(string),
  exposedPorts: array(string),
  labels: record(string),
});
export const layerRef = object({ digest: string, size: integer, mediaType: string });
/** What a pull or an import found: the image's content, before any of it is stored. */
const imageContent = {
  imageId: string,
  /** The OCI manifest the content store keeps (and the archive for Proxmox holds). */
  manifestDigest: string,
  config: object({ digest: string, size: integer }),
  layers: array(layerRef),
  /** Bytes of content: config and layers as stored (compressed). */
  size: integer,
  platform: string,
  imageConfig,
};
const imageNames = object({ repoTags: array(string), repoDigests: array(string) });

/** Old payload of SandboxRequested: flat metadata and at most one network. */
interface SandboxRequestedV1 {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
  network: string;
  config: unknown;
}

export const catalog = {
  // --- sandbox streams -------------------------------------------------------------------
  SandboxRequested: spec({
    kind: "sandbox",
    version: 2,
    doc: "RunPodSandbox was accepted: pod metadata, networks to attach, the CRI config",
    shape: object({
      metadata: podMetadata,
      networks: array(networkAttachment),
      runtimeHandler: string,
      config: json,
    }),
    upcast: {
      1: (data) => {
        const v1 = data as SandboxRequestedV1;
        return {
          metadata: { name: v1.name, uid: v1.uid, namespace: v1.namespace, attempt: v1.attempt },
          networks: v1.network === "" ? [] : [{ name: v1.network, ifname: "eth0" }],
          runtimeHandler: "",
          config: v1.config,
        };
      },
    },
  }),
  SandboxAdopted: spec({
    kind: "sandbox",
    version: 1,
    doc: "A pod whose stream the log lost was taken back, NotReady, from its containers' CTs " +
      "(pod name, namespace and uid; its own config is not on record)",
    shape: object({ metadata: podMetadata, config: json, createdAt: integer }),
  }),
  NamespacesPinned: spec({
    kind: "sandbox",
    version: 1,
    doc: "The pod's net, ipc and uts namespaces are pinned to files",
    shape: object({ paths: record(string) }),
  }),
  NamespacesPinFailed: spec({
    kind: "sandbox",
    version: 1,
    doc: "Pinning the namespaces failed",
    shape: failure,
  }),
  CniAddStarted: spec({
    kind: "sandbox",
    version: 1,
    doc: "A CNI ADD is about to run for this network and interface",
    shape: networkAttachment,
  }),
  CniAdded: spec({
    kind: "sandbox",
    version: 1,
    doc: "A CNI ADD succeeded, with the plugin's result",
    shape: object({ name: string, ifname: string, result: json }),
  }),
  CniAddFailed: spec({
    kind: "sandbox",
    version: 1,
    doc: "A CNI ADD failed",
    shape: object({ name: string, ifname: string, error: string, code: optional(string) }),
  }),
  ContainerAdmitted: spec({
    kind: "sandbox",
    version: 1,
    doc: "The sandbox took a new container (recorded with the container's first event)",
    shape: object({ containerId: string, name: string, attempt: integer }),
  }),
  SandboxStopRequested: spec({
    kind: "sandbox",
    version: 1,
    doc: "StopPodSandbox was accepted",
    shape: empty,
  }),
  ContainersStopped: spec({
    kind: "sandbox",
    version: 1,
    doc: "Every container of the sandbox has stopped",
    shape: object({ containerIds: array(string) }),
  }),
  ContainersStopFailed: spec({
    kind: "sandbox",
    version: 1,
    doc: "Stopping the sandbox's containers failed",
    shape: failure,
  }),
  CniDeleted: spec({
    kind: "sandbox",
    version: 1,
    doc: "A CNI DEL succeeded",
    shape: networkAttachment,
  }),
  CniDelFailed: spec({
    kind: "sandbox",
    version: 1,
    doc: "A CNI DEL failed",
    shape: object({ name: string, ifname: string, error: string, code: optional(string) }),
  }),
  NamespacesUnpinned: spec({
    kind: "sandbox",
    version: 1,
    doc: "The pinned namespaces were released",
    shape: empty,
  }),
  NamespacesUnpinFailed: spec({
    kind: "sandbox",
    version: 1,
    doc: "Releasing the pinned namespaces failed",
    shape: failure,
  }),
  NamespacesLost: spec({
    kind: "sandbox",
    version: 1,
    doc: "Reconciliation found pinned namespaces of a ready sandbox gone: it is NotReady",
    shape: object({ missing: array(string) }),
  }),
  NetworkLost: spec({
    kind: "sandbox",
    version: 1,
    doc: "Reconciliation found interfaces CNI gave a ready sandbox gone: it is NotReady",
    shape: object({ missing: array(string) }),
  }),
  SandboxRemoveRequested: spec({
    kind: "sandbox",
    version: 1,
    doc: "RemovePodSandbox was accepted",
    shape: empty,
  }),
  ContainersRemoved: spec({
    kind: "sandbox",
    version: 1,
    doc: "Every container of the sandbox is removed",
    shape: object({ containerIds: array(string) }),
  }),
  ContainersRemoveFailed: spec({
    kind: "sandbox",
    version: 1,
    doc: "Removing the sandbox's containers failed",
    shape: failure,
  }),

  // --- container streams -----------------------------------------------------------------
  ContainerRequested: spec({
    kind: "container",
    version: 1,
    doc: "CreateContainer was accepted: sandbox, name, image, env, hooks and the CRI config",
    shape: object({
      sandboxId: string,
      metadata: object({ name: string, attempt: integer }),
      image: string,
      envs: array(keyValue),
      hooks: array(hookSpec),
      config: json,
    }),
    // Env values often carry Kubernetes Secrets: stored (recovery needs them), never shown.
    redact: (data) => ({
      ...data,
      envs: data.envs.map(({ key }) => ({ key, value: "<redacted>" })),
    }),
  }),
  ContainerAdopted: spec({
    kind: "container",
    version: 1,
    doc: "A CT of pve-cri's whose stream the log lost was taken back: identity, config and " +
      "state read from the CT (its description, status and the node's exit record)",
    shape: object({
      sandboxId: string,
      metadata: object({ name: string, attempt: integer }),
      image: string,
      imageId: string,
      template: string,
      vmid: integer,
      config: json,
      createdAt: integer,
      state: literal("created", "running", "exited"),
      exit: optional(object({
        exitCode: integer,
        reason: string,
        message: optional(string),
        finishedAt: integer,
      })),
    }),
  }),
  ImageResolved: spec({
    kind: "container",
    version: 1,
    doc: "The image is present: its id and the template volume a CT is created from",
    shape: object({ imageId: string, template: string }),
  }),
  ImageResolveFailed: spec({
    kind: "container",
    version: 1,
    doc: "The image could not be resolved",
    shape: failure,
  }),
  VmidAllocated: spec({
    kind: "container",
    version: 1,
    doc: "A VMID is reserved for the CT, before the create call",
    shape: object({ vmid: integer }),
  }),
  VmidAllocateFailed: spec({
    kind: "container",
    version: 1,
    doc: "No VMID could be allocated",
    shape: failure,
  }),
  PveTaskStarted: spec({
    kind: "container",
    version: 1,
    doc: "A Proxmox task was started (its UPID), before waiting on it",
    shape: object({ upid: string, operation: string }),
  }),
  PveTaskFailed: spec({
    kind: "container",
    version: 1,
    doc: "A Proxmox call or task failed",
    shape: object({
      operation: string,
      upid: optional(string),
      error: string,
      code: optional(string),
    }),
  }),
  CtCreated: spec({
    kind: "container",
    version: 1,
    doc: "The CT exists",
    shape: object({ vmid: integer }),
  }),
  CtConfigured: spec({
    kind: "container",
    version: 1,
    doc: "The CT's command, env and namespace include are set",
    shape: empty,
  }),
  MountsApplied: spec({
    kind: "container",
    version: 1,
    doc: "The CT joins its pod: the include file (namespaces, pod files, mounts) is in its config",
    shape: object({ includeFile: string, mounts: integer }),
  }),
  CtConfigureFailed: spec({
    kind: "container",
    version: 1,
    doc: "Configuring the CT failed",
    shape: failure,
  }),
  HookStarted: spec({
    kind: "container",
    version: 1,
    doc: "An OCI hook is about to run, given this pid",
    shape: object({ stage: hookStage, name: string, pid: optional(integer) }),
  }),
  HookFinished: spec({
    kind: "container",
    version: 1,
    doc: "An OCI hook succeeded: its exit, duration and output tails",
    shape: object({ stage: hookStage, name: string, ...hookOutcome }),
  }),
  HookFailed: spec({
    kind: "container",
    version: 1,
    doc: "An OCI hook failed (fatal before the app starts, a warning after)",
    shape: object({ stage: hookStage, name: string, error: string, ...hookOutcome }),
  }),
  HooksCompleted: spec({
    kind: "container",
    version: 1,
    doc: "Every hook of a stage has run",
    shape: object({ stage: hookStage }),
  }),
  ContainerStartRequested: spec({
    kind: "container",
    version: 1,
    doc: "StartContainer was accepted",
    shape: empty,
  }),
  ContainerStarted: spec({
    kind: "container",
    version: 1,
    doc: "The container's process runs",
    shape: object({ startedAt: integer, pid: optional(integer) }),
  }),
  ContainerStartFailed: spec({
    kind: "container",
    version: 1,
    doc: "Starting failed: the container is exited with reason StartError",
    shape: failure,
  }),
  ContainerStopRequested: spec({
    kind: "container",
    version: 1,
    doc: "StopContainer was accepted, with its grace period",
    shape: object({ timeoutSeconds: integer }),
  }),
  StopTimeoutElapsed: spec({
    kind: "container",
    version: 1,
    doc: "The grace period ran out: the container gets killed",
    shape: empty,
  }),
  ExecFinished: spec({
    kind: "container",
    version: 1,
    doc: "An ExecSync ended (its command, never its input or output)",
    shape: object({
      command: array(string),
      exitCode: integer,
      durationMs: integer,
      timedOut: boolean,
    }),
  }),
  ContainerStopFailed: spec({
    kind: "container",
    version: 1,
    doc: "Stopping failed; the container still runs",
    shape: failure,
  }),
  ContainerExited: spec({
    kind: "container",
    version: 1,
    doc: "The container's process ended: exit code, reason, time",
    shape: object({
      exitCode: integer,
      reason: string,
      message: optional(string),
      finishedAt: integer,
    }),
  }),
  ContainerResourcesRequested: spec({
    kind: "container",
    version: 1,
    doc: "UpdateContainerResources was accepted: the limits to apply",
    shape: object({ resources: resourceLimits }),
  }),
  ContainerResourcesUpdated: spec({
    kind: "container",
    version: 1,
    doc: "The CT's limits were changed",
    shape: object({ resources: resourceLimits }),
  }),
  ContainerResourcesUpdateFailed: spec({
    kind: "container",
    version: 1,
    doc: "Changing the CT's limits failed",
    shape: failure,
  }),
  ContainerRemoveRequested: spec({
    kind: "container",
    version: 1,
    doc: "RemoveContainer was accepted",
    shape: empty,
  }),
  CtDestroyed: spec({
    kind: "container",
    version: 1,
    doc: "The CT is destroyed",
    shape: empty,
  }),
  CtDestroyFailed: spec({
    kind: "container",
    version: 1,
    doc: "Destroying the CT failed",
    shape: failure,
  }),

  // --- image streams ---------------------------------------------------------------------
  ImagePullStarted: spec({
    kind: "image",
    version: 1,
    doc: "A pull resolved a reference in a registry: the image, before its content is fetched",
    shape: object({
      reference: string,
      registry: string,
      /** What the reference resolved to (an index's digest for a multi-platform image). */
      digest: string,
      /** `proxmox`: PVE's own oci-registry-pull fetches the layers into its storage. */
      via: optional(literal("proxmox")),
      ...imageContent,
    }),
  }),
  ImageImportStarted: spec({
    kind: "image",
    version: 1,
    doc: "An image archive (OCI layout or docker save) is being imported: the image it holds",
    shape: object({ archive: string, format: literal("oci", "docker"), ...imageContent }),
  }),
  ImageContentStored: spec({
    kind: "image",
    version: 1,
    doc: "Every blob of the image is in the content store, verified against its digest",
    shape: empty,
  }),
  ImageContentFailed: spec({
    kind: "image",
    version: 1,
    doc: "Fetching the image's content failed or was cancelled; nothing partial is kept",
    shape: failure,
  }),
  ImageTemplateStored: spec({
    kind: "image",
    version: 1,
    doc: "The image's OCI archive is a template in Proxmox storage (uploaded, or found there)",
    shape: object({ volid: string, uploaded: boolean }),
  }),
  ImageTemplateFailed: spec({
    kind: "image",
    version: 1,
    doc: "Storing the image's template in Proxmox failed",
    shape: failure,
  }),
  ImageTagged: spec({
    kind: "image",
    version: 1,
    doc: "Names now point at the image: repo tags and repo digests",
    shape: imageNames,
  }),
  ImageUntagged: spec({
    kind: "image",
    version: 1,
    doc: "Names no longer point at the image (another image took the tag)",
    shape: imageNames,
  }),
  ImageRemoveRequested: spec({
    kind: "image",
    version: 1,
    doc: "RemoveImage was accepted",
    shape: empty,
  }),
  ImageRemoved: spec({
    kind: "image",
    version: 1,
    doc: "The image's template and the blobs no other image uses are removed",
    shape: empty,
  }),
  ImageRemoveFailed: spec({
    kind: "image",
    version: 1,
    doc: "Removing the image failed; it is still present",
    shape: failure,
  }),
} as const;

export type EventType = keyof typeof catalog;
export type Payload<T extends EventType> = Infer<(typeof catalog)[T]["shape"]>;

/** An event as the machines see it: type, payload, and the time the store accepted it. */
export type DomainEvent = {
  [T in EventType]: { type: T; data: Payload<T>; time: number };
}[EventType];

export type EventOf<T extends EventType> = Extract<DomainEvent, { type: T }>;

/** An event a command or effect produces, before the store stamps its time. */
export type NewEvent = {
  [T in EventType]: { type: T; data: Payload<T> };
}[EventType];

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(catalog, type);
}

export function eventSpec(type: EventType): EventSpec<Shape<unknown>> {
  return catalog[type] as unknown as EventSpec<Shape<unknown>>;
}

/** The store's upcaster: old payloads up to today's version, one step at a time. */
export function upcastEvent(
  event: { type: string; typeVersion: number; data: unknown },
): { typeVersion: number; data: unknown } {
  if (!isEventType(event.type)) return event;
  const spec = eventSpec(event.type);
  let { typeVersion, data } = event;
  while (typeVersion < spec.version) {
    const step = spec.upcast?.[typeVersion];
    if (step === undefined) {
      throw new RangeError(`${event.type} has no upcaster from version ${typeVersion}`);
    }
    data = step(data);
    typeVersion++;
  }
  return { typeVersion, data };
}

/** Why a stored event cannot be folded, or undefined when it can. */
export function payloadProblem(
  type: string,
  typeVersion: number,
  data: unknown,
): string | undefined {
  if (!isEventType(type)) return `unknown event type "${type}"`;
  const spec = eventSpec(type);
  if (typeVersion > spec.version) {
    return `${type} version ${typeVersion} is newer than this pve-cri knows (${spec.version})`;
  }
  return spec.shape.check(data, "data");
}

/** The payload as it may be shown: secrets replaced. */
export function redactPayload(type: string, data: unknown): unknown {
  if (!isEventType(type)) return data;
  const spec = eventSpec(type);
  if (spec.redact === undefined) return data;
  // A payload of the wrong shape cannot be redacted field by field: hide all of it.
  if (spec.shape.check(data, "data") !== undefined) return "<redacted: malformed payload>";
  return spec.redact(data);
}
