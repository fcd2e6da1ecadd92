/**
 * A real backend's network until CNI lands: pods get their pinned netns with loopback only,
 * and NetworkReady is false with containerd's reason when it has no CNI config.
 */
import type { CniResult, NetworkAttachment, NetworkPlugin, NetworkStatus } from "./mod.ts";

export class NoCni implements NetworkPlugin {
  status(): Promise<NetworkStatus> {
    return Promise.resolve({
      ready: false,
      reason: "NetworkPluginNotReady",
      message: "Network plugin returns error: cni plugin not initialized",
    });
  }

  networksFor(_hostNetwork: boolean): NetworkAttachment[] {
    return [];
  }

  add(): Promise<CniResult> {
    return Promise.resolve({ ips: [] });
  }

  del(): Promise<void> {
    return Promise.resolve();
  }
}
