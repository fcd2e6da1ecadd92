/** What pve-cri reports against what Proxmox has, for tests that drive it over the CRI. */
import assert from "node:assert/strict";
import type { ProxmoxApi } from "../../adapters/proxmox/mod.ts";
import { identityOf, ownerTag } from "../../runtime/ct_identity.ts";
import type { CriClient } from "./cri_client.ts";

const ctStatusOf: Record<string, string> = {
  CONTAINER_CREATED: "stopped",
  CONTAINER_RUNNING: "running",
  CONTAINER_EXITED: "stopped",
};

/** Every container pve-cri lists has its CT in the matching state, and every CT of pve-cri's
 * belongs to a listed container. */
export async function assertStateTrue(cri: CriClient, pve: ProxmoxApi): Promise<void> {
  const { containers } = await cri.runtime.ListContainers({});
  const states = new Map<string, string>(
    containers.map((c: { id: string; state: string }) => [c.id, c.state]),
  );
  const owned = new Set<string>();
  for (const ct of await pve.listCts()) {
    if (!(ct.tags ?? "").split(/[;, ]/).includes(ownerTag)) continue;
    const id = identityOf((await pve.ctConfig({ vmid: ct.vmid })).description)?.containerId;
    assert.ok(id !== undefined, `CT ${ct.vmid} is tagged ${ownerTag} and names no container`);
    owned.add(id);
    const state = states.get(id);
    assert.ok(state !== undefined, `CT ${ct.vmid} belongs to no listed container (${id})`);
    assert.equal(ct.status, ctStatusOf[state], `CT ${ct.vmid} of a ${state} container`);
  }
  for (const id of states.keys()) assert.ok(owned.has(id), `container ${id} has no CT`);
}
