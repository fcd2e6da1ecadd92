/** Pulling from OCI registries: the distribution API client, its hosts and authentication. */
export { type RegistryCredentials, TokenCache } from "./auth.ts";
export {
  RegistryClient,
  type RegistryClientOptions,
  RepositorySession,
  type ResolvedImage,
} from "./client.ts";
export {
  type Capability,
  isLoopback,
  type MirrorSettings,
  parseRegistrySettings,
  RegistryHosts,
  type RegistrySettings,
} from "./hosts.ts";
export { pullLayers, type PullLayersOptions } from "./pull_layers.ts";
