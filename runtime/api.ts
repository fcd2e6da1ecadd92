/**
 * What the runtime offers its inbound adapters (CRI gRPC, the HTTP endpoint): commands and
 * views in plain data. Adapters depend on this, never on the machines; the runtime builds it
 * from the kernel. Times are ms since the epoch; the CRI adapter turns them into int64 ns.
 */
import type { EventMeta } from "../store/mod.ts";

export interface CallInfo {
  /** Stored with the events: which CRI method, which request. */
  meta: EventMeta;
  /** The caller gave up: stop waiting (the work goes on, and a retry finds it). */
  signal?: AbortSignal;
  /** When the caller will give up, ms since the epoch (the gRPC deadline), if it said. */
  deadline?: number;
}

export interface PodMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

export interface PortMapping {
  protocol: string;
  containerPort: number;
  hostPort: number;
  hostIp: string;
}

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

/** The parts of a PodSandboxConfig pve-cri keeps (and shows back). */
export interface SandboxSpec {
  metadata: PodMetadata;
  hostname: string;
  logDirectory: string;
  dnsConfig: DnsConfig | null;
  portMappings: PortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  hostNetwork: boolean;
  /** Shares the node's IPC namespace (absent in streams written before it was kept). */
  hostIpc?: boolean;
  cgroupParent: string;
  sysctls: Record<string, string>;
  runtimeHandler: string;
}

export type SandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";
export type ContainerState =
  | "CONTAINER_CREATED"
  | "CONTAINER_RUNNING"
  | "CONTAINER_EXITED"
  | "CONTAINER_UNKNOWN";

export interface SandboxView {
  id: string;
  state: SandboxState;
  /** The machine state behind it (pinning, ready, stopFailed, …). */
  phase: string;
  spec: SandboxSpec;
  createdAt: number;
  /** Pod addresses from CNI, first one the primary. */
  ips: string[];
  /** Containers admitted (live or not). */
  containerIds: string[];
  /** Set when the last step failed: what and why. */
  error: string | null;
}

/** What a sandbox list shows: cheap for thousands of entries. */
export interface SandboxListItem {
  id: string;
  state: SandboxState;
  phase: string;
  metadata: PodMetadata;
  createdAt: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
}

export interface Mount {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  propagation: string;
}

/** Limits as the CRI gives them (LinuxContainerResources), int64 values as decimal strings. */
export interface CriResources {
  cpuPeriod: string;
  cpuQuota: string;
  cpuShares: string;
  memoryLimitInBytes: string;
  memorySwapLimitInBytes: string;
  cpusetCpus: string;
  cpusetMems: string;
}

/** The parts of a ContainerConfig pve-cri keeps (and shows back). */
export interface ContainerSpec {
  name: string;
  attempt: number;
  image: string;
  command: string[];
  args: string[];
  workingDir: string;
  envs: { key: string; value: string }[];
  mounts: Mount[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  logPath: string;
  tty: boolean;
  stdin: boolean;
  resources: CriResources | null;
  /** run_as_username or run_as_user[:run_as_group]; "" = the image's user. */
  user?: string;
}

export interface ContainerView {
  id: string;
  sandboxId: string;
  state: ContainerState;
  phase: string;
  spec: Omit<ContainerSpec, "envs"> & { envs: { key: string; value: string }[] };
  imageId: string;
  vmid: number | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  exitCode: number;
  reason: string;
  message: string;
  /** Limits in effect, in Proxmox units. */
  limits: { memoryMiB?: number; swapMiB?: number; cpulimit?: number; cpuunits?: number } | null;
  /**
   * The log file on the node: the sandbox's log directory joined with the config's log path, as
   * containerd composes it (the kubelet reads logs from it); empty when either is empty.
   */
  logPath: string;
}

/** What a container list shows: cheap for thousands of entries. */
export interface ContainerListItem {
  id: string;
  sandboxId: string;
  state: ContainerState;
  phase: string;
  name: string;
  attempt: number;
  image: string;
  imageId: string;
  createdAt: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ContainerStatsView {
  id: string;
  spec: Pick<ContainerSpec, "name" | "attempt" | "labels" | "annotations">;
  sandboxId: string;
  timestamp: number;
  /** Cumulative CPU time, ns, as a decimal string (int64 never passes through a number). */
  cpuUsageCoreNanoSeconds: string;
  memoryWorkingSetBytes: string;
  memoryAvailableBytes: string | null;
  /** The CT's root filesystem; null where the node cannot see it. */
  writableLayer: { mountpoint: string; usedBytes: string; inodesUsed: string } | null;
}

export type ContainerEventType =
  | "CONTAINER_CREATED_EVENT"
  | "CONTAINER_STARTED_EVENT"
  | "CONTAINER_STOPPED_EVENT"
  | "CONTAINER_DELETED_EVENT";

export interface ContainerLifecycleEvent {
  containerId: string;
  type: ContainerEventType;
  time: number;
  sandbox: SandboxView | null;
  containers: ContainerView[];
}

/** What a container gets from its image (the image config's parts the CRI shows). */
export interface ImageSpec {
  user: string;
  env: string[];
  entrypoint: string[];
  cmd: string[];
  workingDir: string;
  stopSignal: string;
  volumes: string[];
  exposedPorts: string[];
  labels: Record<string, string>;
}

export interface ImageView {
  /** The config's digest. */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Bytes of content (config and layers, as stored). */
  size: number;
  /** Where the CT template is: `storage:vztmpl/file.tar`. */
  volid: string;
  /** From the image's User: a numeric user as a uid (decimal int64), else a user name. */
  uid: string | null;
  username: string;
  spec: ImageSpec | null;
  /** When it was pulled or imported, ms since the epoch. */
  createdAt: number;
}

/** Registry credentials for one pull (the CRI's AuthConfig); never stored or logged. */
export interface RegistryAuth {
  username?: string;
  password?: string;
  /** base64 of `username:password`. */
  auth?: string;
  identityToken?: string;
  registryToken?: string;
}

/** How a pull or an import is getting on, for a caller that shows it. */
export type PullProgress =
  | { kind: "resolved"; imageId: string; layers: { digest: string; size: number }[] }
  | { kind: "layer"; digest: string; done: number; total: number }
  | { kind: "template"; done: number; total: number };

export interface PullOptions {
  auth?: RegistryAuth;
  onProgress?: (progress: PullProgress) => void;
}

export interface ImportOptions {
  /** The name to give the image (and to pick it in an archive that holds several). */
  name?: string;
  onProgress?: (progress: PullProgress) => void;
}

export interface RuntimeReadiness {
  runtimeReady: boolean;
  networkReady: boolean;
  networkReason: string;
  networkMessage: string;
  info: Record<string, unknown>;
}

export interface PodRuntime {
  readonly name: string;
  readonly version: string;

  readiness(): Promise<RuntimeReadiness>;
  /** The node's pod CIDRs from the kubelet (UpdateRuntimeConfig), for CNI's `ipRanges`. */
  setPodCidrs(cidrs: string[]): void;

  /** A full id, or a unique prefix of a live one; undefined when nothing matches. */
  resolveSandbox(idOrPrefix: string): string | undefined;
  resolveContainer(idOrPrefix: string): string | undefined;

  runPodSandbox(spec: SandboxSpec, call: CallInfo): Promise<SandboxView>;
  stopPodSandbox(id: string, call: CallInfo): Promise<void>;
  removePodSandbox(id: string, call: CallInfo): Promise<void>;
  sandbox(id: string): SandboxView | undefined;
  /** Extra detail for verbose status: state, event count, the containers' VMIDs. */
  sandboxInfo(id: string): Record<string, unknown>;
  /** CNI CHECK of each of the sandbox's networks: `NAME/IFNAME` → "ok" or what is wrong. */
  sandboxNetworkCheck(id: string): Promise<Record<string, string>>;
  sandboxes(): SandboxListItem[];

  createContainer(sandboxId: string, spec: ContainerSpec, call: CallInfo): Promise<ContainerView>;
  startContainer(id: string, call: CallInfo): Promise<void>;
  stopContainer(id: string, timeoutSeconds: number, call: CallInfo): Promise<void>;
  removeContainer(id: string, call: CallInfo): Promise<void>;
  updateContainerResources(id: string, resources: CriResources, call: CallInfo): Promise<void>;
  container(id: string): ContainerView | undefined;
  containerInfo(id: string): Record<string, unknown>;
  containers(): ContainerListItem[];
  containerStats(id: string): Promise<ContainerStatsView | undefined>;
  /** Runs a command in a running container and waits for it (the CRI's ExecSync). */
  execSync(
    id: string,
    request: { cmd: string[]; timeoutSeconds: number },
    call: CallInfo,
  ): Promise<{ stdout: Uint8Array; stderr: Uint8Array; exitCode: number }>;
  /** Makes the container's log writer reopen its log file (after the kubelet rotated it). */
  reopenContainerLog(id: string): Promise<void>;

  /** Container lifecycle events as they are committed; returns the unsubscribe function. */
  onContainerEvent(listener: (event: ContainerLifecycleEvent) => void): () => void;

  pullImage(reference: string, call: CallInfo, options?: PullOptions): Promise<ImageView>;
  /** Imports an image archive on the node (OCI layout or docker save, plain or gzip). */
  importImage(path: string, call: CallInfo, options?: ImportOptions): Promise<ImageView>;
  images(): Promise<ImageView[]>;
  image(reference: string): Promise<ImageView | undefined>;
  /** Verbose status of a present image: its whole image config, where it came from. */
  imageInfo(id: string): Promise<Record<string, unknown>>;
  removeImage(reference: string, call: CallInfo): Promise<void>;
  imageFsInfo(): Promise<
    { timestamp: number; mountpoint: string; usedBytes: number; inodesUsed: number }
  >;
}
