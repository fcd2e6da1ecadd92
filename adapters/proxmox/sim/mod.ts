/** The simulator's public surface. */
import type { ProxmoxConfig } from "../config.ts";
import type { Simulator } from "./simulator.ts";

export { startSimulator } from "./simulator.ts";
export type { Simulator, SimulatorOptions } from "./simulator.ts";
export type { FaultRule } from "./faults.ts";
export type { CtDriver, CtRunSpec, CtRuntimeStatus, TaskLog } from "./driver.ts";
export { MemoryDriver } from "./memory_driver.ts";
export { type OciPuller, skopeoPuller, type SkopeoPullerOptions } from "./oci_puller.ts";
export { type OciImageConfig, readOciImageConfig } from "./oci_archive.ts";
export type { SimToken, SimUser } from "./access.ts";
export type { RequestRecord } from "./server.ts";

/** The config file that points the runtime at this simulator (token auth, CA trust). */
export function simulatorConfig(sim: Simulator): ProxmoxConfig {
  return {
    url: sim.url,
    node: sim.node,
    auth: { tokenId: sim.token.tokenid, secret: sim.token.secret },
    tls: sim.url.startsWith("http:") ? { insecure: true } : { caFile: sim.caFile },
    storage: { rootfs: "local-lvm", templates: "local" },
    bridge: "vmbr0",
  };
}
