/**
 * What each ADD returned, on disk per attachment (as libcni's `results` dir): DEL after a
 * restart, or after the conf dir changed, gets the config the ADD used and its result as
 * `prevResult`, as the spec asks.
 */
import { join } from "node:path";
import type { NetworkConfigList } from "./network_config.ts";

export interface CachedAttachment {
  kind: "cniCacheV1";
  containerId: string;
  ifName: string;
  networkName: string;
  config: NetworkConfigList;
  cniArgs: string;
  /** What ADD's plugins got as capability args: DEL and CHECK get the same (as libcni). */
  capabilityArgs?: Record<string, unknown>;
  result: Record<string, unknown>;
}

export class ResultCache {
  constructor(readonly dir: string) {}

  #path(network: string, containerId: string, ifname: string): string {
    return join(this.dir, `${network}-${containerId}-${ifname}`);
  }

  get(network: string, containerId: string, ifname: string): CachedAttachment | undefined {
    try {
      const entry = JSON.parse(
        Deno.readTextFileSync(this.#path(network, containerId, ifname)),
      ) as CachedAttachment;
      return entry.kind === "cniCacheV1" ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  put(entry: CachedAttachment): void {
    Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = this.#path(entry.networkName, entry.containerId, entry.ifName);
    const tmp = `${path}.tmp`;
    Deno.writeTextFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    Deno.renameSync(tmp, path);
  }

  delete(network: string, containerId: string, ifname: string): void {
    try {
      Deno.removeSync(this.#path(network, containerId, ifname));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  /** Every attachment with a cached result (for GC and leak checks). */
  list(): CachedAttachment[] {
    let names: string[];
    try {
      names = [...Deno.readDirSync(this.dir)].map((e) => e.name).filter((n) => !n.endsWith(".tmp"));
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      try {
        return [JSON.parse(Deno.readTextFileSync(join(this.dir, name))) as CachedAttachment];
      } catch {
        return [];
      }
    });
  }
}
