/** The Proxmox adapter's public surface: the client the runtime uses and its types. */
export { createProxmoxClient, ProxmoxClient } from "./client.ts";
export type { ProxmoxClientOptions } from "./client.ts";
export type * from "./api.ts";
export type { AuthConfig } from "./auth.ts";
export type { TlsOptions } from "./tls.ts";
export * from "./errors.ts";
export { formatUpid, parseUpid, type Upid } from "./upid.ts";
export { isTaskSuccess } from "./tasks.ts";
export {
  clientOptionsFromConfig,
  loadProxmoxConfig,
  parseProxmoxConfig,
  type ProxmoxConfig,
  writeProxmoxConfig,
} from "./config.ts";
