/**
 * The pod network's CNI configuration: the lexically first `.conflist`, `.conf` or `.json` in
 * the conf dir that parses (as libcni picks it), a single-plugin `.conf` lifted into a list.
 * Read again whenever the directory changes: a CNI agent (Cilium's, Calico's) writes its file
 * after the runtime starts, and NetworkReady turns true without a restart.
 */
import { join } from "node:path";

export interface PluginConfig {
  type: string;
  capabilities?: Record<string, boolean>;
  [field: string]: unknown;
}

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConfig[];
  /** Where it was read from. */
  file: string;
}

export type LoadedConfig = { config: NetworkConfigList } | { error: string };

const extensions = [".conflist", ".conf", ".json"];

/** Reads the conf dir again only when a file in it was added, removed or changed. */
export class NetworkConfigLoader {
  #signature: string | undefined;
  #loaded: LoadedConfig = { error: "not loaded" };

  constructor(readonly confDir: string) {}

  current(): LoadedConfig {
    const signature = dirSignature(this.confDir);
    if (signature !== this.#signature) {
      this.#signature = signature;
      this.#loaded = loadNetworkConfig(this.confDir);
    }
    return this.#loaded;
  }
}

export function loadNetworkConfig(confDir: string): LoadedConfig {
  let names: string[];
  try {
    names = [...Deno.readDirSync(confDir)].filter((e) => !e.isDirectory).map((e) => e.name);
  } catch (error) {
    return { error: `cannot read the CNI conf dir ${confDir}: ${(error as Error).message}` };
  }
  const candidates = names.filter((n) => extensions.some((x) => n.endsWith(x))).sort();
  const skipped: string[] = [];
  for (const name of candidates) {
    const file = join(confDir, name);
    try {
      return { config: parseNetworkConfig(Deno.readTextFileSync(file), file) };
    } catch (error) {
      skipped.push(`${name}: ${(error as Error).message}`);
    }
  }
  const why = skipped.length === 0 ? "" : ` (skipped ${skipped.join("; ")})`;
  return { error: `no network config found in ${confDir}${why}` };
}

export function parseNetworkConfig(text: string, file: string): NetworkConfigList {
  const raw = JSON.parse(text) as Record<string, unknown>;
  if (typeof raw !== "object" || raw === null) throw new Error("not a JSON object");
  const list = file.endsWith(".conflist")
    ? raw
    : { cniVersion: raw.cniVersion, name: raw.name, plugins: [raw] };
  // The spec's form; it also names files in the result cache.
  if (typeof list.name !== "string" || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(list.name)) {
    throw new Error(`"name" ${JSON.stringify(list.name)} is not a valid network name`);
  }
  if (typeof list.cniVersion !== "string") throw new Error('no "cniVersion"');
  const plugins = list.plugins;
  if (!Array.isArray(plugins) || plugins.length === 0) throw new Error('no "plugins"');
  for (const [i, plugin] of plugins.entries()) {
    if (typeof plugin?.type !== "string" || !/^[\w.-]+$/.test(plugin.type)) {
      throw new Error(`plugins[${i}] has no valid "type"`);
    }
  }
  return {
    cniVersion: list.cniVersion,
    name: list.name,
    ...(list.disableCheck === true ? { disableCheck: true } : {}),
    plugins: plugins as PluginConfig[],
    file,
  };
}

function dirSignature(dir: string): string {
  try {
    return [...Deno.readDirSync(dir)].map((e) => {
      try {
        const info = Deno.statSync(join(dir, e.name));
        return `${e.name}:${info.size}:${info.mtime?.getTime()}`;
      } catch {
        return e.name;
      }
    }).sort().join("\n");
  } catch {
    return "(unreadable)";
  }
}
