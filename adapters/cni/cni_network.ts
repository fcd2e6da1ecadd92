/**
 * The pod network through CNI (spec 1.0 and 1.1), as containerd's go-cni and CRI-O's ocicni
 * drive it: one network from the conf dir, each pod attached as `eth0`; ADD through the chain
 * with each plugin's result as the next one's `prevResult`, DEL in reverse, CHECK in order;
 * STATUS and GC for 1.1 networks; capability args only to the plugins that declare them; a
 * result cache so DEL and CHECK have what ADD returned.
 */
import { FailedPreconditionError } from "../../lib/errors.ts";
import type {
  CniRequest,
  CniResult,
  NetworkAttachment,
  NetworkPlugin,
  NetworkStatus,
} from "./mod.ts";
import {
  type NetworkConfigList,
  NetworkConfigLoader,
  type PluginConfig,
} from "./network_config.ts";
import { type CniCommand, execPlugin, findPlugin } from "./plugin_exec.ts";
import { ResultCache } from "./result_cache.ts";

export interface CniOptions {
  /** Where the network config is (the kubelet's old `--cni-conf-dir`, `/etc/cni/net.d`). */
  confDir: string;
  /** Where plugins are searched, in order (`/opt/cni/bin`, then Debian's `/usr/lib/cni`). */
  binDirs: string[];
  /** The result cache (libcni keeps it in `/var/lib/cni/results`). */
  cacheDir: string;
  /** Per plugin call; a plugin still running then is killed. */
  timeoutMs?: number;
}

export const defaultCniConfDir = "/etc/cni/net.d";
export const defaultCniBinDirs = ["/opt/cni/bin", "/usr/lib/cni"];

const podInterface = "eth0";

export class CniNetwork implements NetworkPlugin {
  readonly #loader: NetworkConfigLoader;
  readonly #cache: ResultCache;
  readonly #timeoutMs: number;
  /** Per loaded config: why a plugin cannot speak its cniVersion (VERSION), if one cannot. */
  readonly #versions = new WeakMap<NetworkConfigList, Promise<string | undefined>>();

  constructor(readonly options: CniOptions) {
    this.#loader = new NetworkConfigLoader(options.confDir);
    this.#cache = new ResultCache(options.cacheDir);
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** The network config in use, or why there is none (or a plugin of it is missing). */
  #config(): { config: NetworkConfigList } | { error: string } {
    const loaded = this.#loader.current();
    if ("error" in loaded) return loaded;
    for (const plugin of loaded.config.plugins) {
      if (findPlugin(plugin.type, this.options.binDirs) === undefined) {
        return {
          error:
            `CNI plugin ${plugin.type} (network ${loaded.config.name}, ${loaded.config.file}) ` +
            `not found in ${this.options.binDirs.join(":")}`,
        };
      }
    }
    return loaded;
  }

  async status(): Promise<NetworkStatus> {
    const current = this.#config();
    const error = "error" in current
      ? current.error
      : await this.#versionError(current.config) ?? await this.#statusError(current.config);
    return error === undefined ? { ready: true, reason: "", message: "" } : {
      ready: false,
      reason: "NetworkPluginNotReady",
      message: `Network plugin returns error: cni plugin not initialized: ${error}`,
    };
  }

  /** Asks each plugin (VERSION) whether it speaks the list's cniVersion, once per config. */
  #versionError(config: NetworkConfigList): Promise<string | undefined> {
    let checked = this.#versions.get(config);
    if (checked === undefined) {
      checked = (async () => {
        for (const plugin of config.plugins) {
          const answer = await execPlugin({
            command: "VERSION",
            type: plugin.type,
            containerId: "",
            netns: "",
            ifname: "",
            args: "",
            config: { cniVersion: config.cniVersion },
            binDirs: this.options.binDirs,
            timeoutMs: this.#timeoutMs,
          }).catch((error: Error) => ({ error: error.message }));
          if (answer !== undefined && "error" in answer) return String(answer.error);
          const supported = answer?.supportedVersions;
          if (Array.isArray(supported) && !supported.includes(config.cniVersion)) {
            return `CNI plugin ${plugin.type} speaks ${supported.join(", ")}, not ` +
              `${config.cniVersion} (network ${config.name}, ${config.file})`;
          }
        }
        return undefined;
      })();
      this.#versions.set(config, checked);
    }
    return checked;
  }

  /** CNI 1.1 STATUS: each plugin says whether it can take an ADD now. */
  async #statusError(config: NetworkConfigList): Promise<string | undefined> {
    if (!atLeast(config.cniVersion, "1.1.0")) return undefined;
    for (const plugin of config.plugins) {
      try {
        await this.#exec("STATUS", plugin, config, {});
      } catch (error) {
        return (error as Error).message;
      }
    }
    return undefined;
  }

  async check(request: CniRequest): Promise<void> {
    const cached = this.#cache.get(request.name, request.sandboxId, request.ifname);
    if (cached === undefined) {
      throw new FailedPreconditionError(
        `no CNI result recorded for ${request.name}/${request.ifname} of sandbox ${request.sandboxId}`,
      );
    }
    const { config } = cached;
    // CHECK came with 0.4.0; a list may turn it off.
    if (config.disableCheck === true || !atLeast(config.cniVersion, "0.4.0")) return;
    for (const plugin of config.plugins) {
      await this.#exec("CHECK", plugin, config, {
        request: withCachedCapabilities(request, cached.capabilityArgs),
        args: cached.cniArgs,
        prevResult: cached.result,
      });
    }
  }

  async gc(valid: { sandboxId: string; ifname: string }[]): Promise<void> {
    const current = this.#config();
    if ("error" in current || !atLeast(current.config.cniVersion, "1.1.0")) return;
    const { config } = current;
    const attachments = valid.map((a) => ({ containerID: a.sandboxId, ifname: a.ifname }));
    for (const plugin of config.plugins) {
      await this.#exec("GC", plugin, config, {
        extra: { "cni.dev/valid-attachments": attachments },
      });
    }
    // What the plugins were told is gone is gone from the cache too (as libcni's GC does).
    const keep = new Set(valid.map((a) => `${a.sandboxId}/${a.ifname}`));
    for (const entry of this.#cache.list()) {
      if (entry.networkName === config.name && !keep.has(`${entry.containerId}/${entry.ifName}`)) {
        this.#cache.delete(entry.networkName, entry.containerId, entry.ifName);
      }
    }
  }

  cachedAttachments(): (NetworkAttachment & { sandboxId: string })[] {
    return this.#cache.list().map((entry) => ({
      name: entry.networkName,
      ifname: entry.ifName,
      sandboxId: entry.containerId,
    }));
  }

  networksFor(hostNetwork: boolean): NetworkAttachment[] {
    if (hostNetwork) return [];
    const current = this.#config();
    if ("error" in current) {
      throw new FailedPreconditionError(
        `the pod network is not ready (NetworkReady is false): ${current.error}; ` +
          "host-network pods still run",
      );
    }
    return [{ name: current.config.name, ifname: podInterface }];
  }

  async add(request: CniRequest): Promise<CniResult> {
    const current = this.#config();
    if ("error" in current) throw new FailedPreconditionError(current.error);
    const { config } = current;
    const unsupported = await this.#versionError(config);
    if (unsupported !== undefined) throw new FailedPreconditionError(unsupported);
    if (config.name !== request.name) {
      throw new FailedPreconditionError(
        `the CNI network changed from ${request.name} to ${config.name} (${config.file}) ` +
          "while the pod was being set up",
      );
    }
    const args = cniArgs(request);
    let result: Record<string, unknown> | undefined;
    for (const plugin of config.plugins) {
      result = await this.#exec("ADD", plugin, config, {
        request,
        args,
        ...(result === undefined ? {} : { prevResult: result }),
      }) ?? result;
    }
    const final = result ?? { cniVersion: config.cniVersion };
    this.#cache.put({
      kind: "cniCacheV1",
      containerId: request.sandboxId,
      ifName: request.ifname,
      networkName: config.name,
      config,
      cniArgs: args,
      ...(request.capabilityArgs === undefined ? {} : { capabilityArgs: request.capabilityArgs }),
      result: final,
    });
    return { ips: [], ...final } as CniResult;
  }

  async del(request: CniRequest): Promise<void> {
    const cached = this.#cache.get(request.name, request.sandboxId, request.ifname);
    const loaded = this.#loader.current();
    // The config the ADD used; without a cache entry, the current one if it is that network.
    const config = cached?.config ??
      ("config" in loaded && loaded.config.name === request.name ? loaded.config : undefined);
    if (config === undefined) return; // nothing was added through a config we can still name
    const args = cached?.cniArgs ?? cniArgs(request);
    const asAdded = withCachedCapabilities(request, cached?.capabilityArgs);
    for (const plugin of [...config.plugins].reverse()) {
      await this.#exec("DEL", plugin, config, {
        request: asAdded,
        args,
        ...(cached === undefined ? {} : { prevResult: cached.result }),
      });
    }
    this.#cache.delete(request.name, request.sandboxId, request.ifname);
  }

  /** One plugin call: its config with the list's name and version, and what the call adds. */
  #exec(
    command: CniCommand,
    plugin: PluginConfig,
    list: NetworkConfigList,
    call: {
      request?: CniRequest;
      args?: string;
      prevResult?: Record<string, unknown>;
      extra?: Record<string, unknown>;
    },
  ) {
    const { capabilities, ...own } = plugin;
    const runtimeConfig = call.request === undefined
      ? undefined
      : runtimeConfigFor(capabilities, call.request.capabilityArgs ?? {});
    return execPlugin({
      command,
      type: plugin.type,
      containerId: call.request?.sandboxId ?? "",
      netns: call.request?.netns ?? "",
      ifname: call.request?.ifname ?? "",
      args: call.args ?? "",
      config: {
        ...own,
        cniVersion: list.cniVersion,
        name: list.name,
        ...(call.prevResult === undefined ? {} : { prevResult: call.prevResult }),
        ...(runtimeConfig === undefined ? {} : { runtimeConfig }),
        ...call.extra,
      },
      binDirs: this.options.binDirs,
      timeoutMs: this.#timeoutMs,
    });
  }
}

/** The request with the capability args its ADD had, when they were recorded. */
function withCachedCapabilities(
  request: CniRequest,
  cached: Record<string, unknown> | undefined,
): CniRequest {
  return cached === undefined ? request : { ...request, capabilityArgs: cached };
}

/** `a` is version `b` or later (dotted numbers). */
function atLeast(a: string, b: string): boolean {
  const [x, y] = [a, b].map((v) => v.split(".").map(Number));
  for (let i = 0; i < 3; i++) {
    const d = (x![i] ?? 0) - (y![i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

/** `CNI_ARGS` as the kubelet's runtimes pass them. */
function cniArgs(request: CniRequest): string {
  const pod = request.pod;
  return [
    "IgnoreUnknown=1",
    ...(pod === undefined ? [] : [
      `K8S_POD_NAMESPACE=${pod.namespace}`,
      `K8S_POD_NAME=${pod.name}`,
      `K8S_POD_INFRA_CONTAINER_ID=${request.sandboxId}`,
      `K8S_POD_UID=${pod.uid}`,
    ]),
  ].join(";");
}

/** Only what the plugin declared it can take (the spec's capability args). */
function runtimeConfigFor(
  capabilities: Record<string, boolean> | undefined,
  args: Record<string, unknown>,
): Record<string, unknown> | undefined {
  const wanted = Object.entries(args).filter(([key]) => capabilities?.[key] === true);
  return wanted.length === 0 ? undefined : Object.fromEntries(wanted);
}
