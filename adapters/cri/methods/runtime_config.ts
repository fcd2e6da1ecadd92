import type { UnaryHandler } from "../rpc.ts";

/** Proxmox nodes run LXC under cgroupfs paths (lxc/VMID), not systemd slices. */
export const runtimeConfig = (): UnaryHandler => () =>
  Promise.resolve({ linux: { cgroup_driver: "CGROUPFS" } });
