/**
 * What a CT carries so it can be found again with the event log gone: tags (`pve-cri` and
 * the pod namespace) and a description holding the CRI identity as JSON.
 */
export interface CtIdentity {
  containerId: string;
  sandboxId: string;
  podUid: string;
  podName: string;
  podNamespace: string;
  name: string;
  attempt: number;
  /**
   * What a container stream lost with its log is rebuilt from (adoption): the CRI config
   * without its env (env values may be Secrets, and a description is shown in Proxmox's UI),
   * the image and when it was created. Left out when it would not fit the description.
   */
  adoption?: CtAdoption;
}

export interface CtAdoption {
  image: string;
  imageId: string;
  template: string;
  createdAt: number;
  config: Record<string, unknown>;
}

/** PVE's limit on a CT's description. */
const descriptionMaxLength = 8192;

export const ownerTag = "pve-cri";

export function ctTags(identity: CtIdentity): string[] {
  // pve-tag: [a-z0-9_][a-z0-9_\-+.]*; Kubernetes namespaces already fit, this keeps it so.
  const ns = identity.podNamespace.toLowerCase().replace(/[^a-z0-9_\-+.]/g, "_")
    .replace(/^[^a-z0-9_]/, "_");
  return ns === "" ? [ownerTag] : [ownerTag, ns];
}

export function ctDescription(identity: CtIdentity): string {
  const full = JSON.stringify({ "pve-cri": identity });
  if (full.length <= descriptionMaxLength) return full;
  const { adoption: _, ...bare } = identity;
  return JSON.stringify({ "pve-cri": bare });
}

/** The identity in a CT's description, or undefined when pve-cri did not make the CT. */
export function identityOf(description: string | undefined): CtIdentity | undefined {
  if (description === undefined) return undefined;
  try {
    const parsed = JSON.parse(description) as { "pve-cri"?: CtIdentity };
    const identity = parsed["pve-cri"];
    return typeof identity?.containerId === "string" ? identity : undefined;
  } catch {
    return undefined;
  }
}
