/**
 * Pod networking through CNI: the networks a new pod gets, ADD, DEL, and whether networking
 * is ready at all (the CRI's NetworkReady condition).
 */
export interface NetworkAttachment {
  /** The CNI network (conflist) name. */
  name: string;
  ifname: string;
}

export interface CniRequest extends NetworkAttachment {
  /** The sandbox id: CNI's CONTAINERID. */
  sandboxId: string;
  /** The pinned network namespace: CNI's NETNS. */
  netns: string;
  /** The pod, for `CNI_ARGS` (K8S_POD_NAMESPACE, …). */
  pod?: { namespace: string; name: string; uid: string };
  /** Capability args (`portMappings`, `dns`, `bandwidth`, …) for plugins that declare them. */
  capabilityArgs?: Record<string, unknown>;
}

/** The part of a CNI result the runtime reads: the pod's addresses. */
export interface CniResult {
  ips: { address: string; gateway?: string; interface?: number }[];
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  [field: string]: unknown;
}

export interface NetworkStatus {
  ready: boolean;
  reason: string;
  message: string;
}

export interface NetworkPlugin {
  status(): Promise<NetworkStatus>;
  /** The attachments a pod on the pod network gets, in order (none for host network). */
  networksFor(hostNetwork: boolean): NetworkAttachment[];
  add(request: CniRequest): Promise<CniResult>;
  /** Idempotent, as CNI requires: deleting what is gone succeeds. */
  del(request: CniRequest): Promise<void>;
  /** CNI CHECK: is the attachment still as ADD made it? Rejects with the plugin's error. */
  check?(request: CniRequest): Promise<void>;
  /** CNI GC (1.1): plugins release what belongs to no attachment in `valid`. */
  gc?(valid: { sandboxId: string; ifname: string }[]): Promise<void>;
  /** The attachments whose ADD results are cached: made and not yet deleted. */
  cachedAttachments?(): (NetworkAttachment & { sandboxId: string })[];
}
