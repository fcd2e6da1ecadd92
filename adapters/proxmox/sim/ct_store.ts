/**
 * The CT config files of the simulated node, one per CT as in `/etc/pve/lxc/<vmid>.conf`.
 * Read from disk on every access, as PVE reads pmxcfs, so an edit to the file (what root
 * does on a real node) is seen at once.
 */
import { join } from "node:path";
import { type CtConfig, formatCtConfig, parseCtConfig, type ParsedCtConfig } from "./ct_config.ts";
import { listDir, readTextIfExists, removeIfExists, rewriteFile } from "./files.ts";
import { handlerError } from "./http_error.ts";

export class CtStore {
  readonly dir: string;
  readonly #node: string;

  constructor(dir: string, node: string) {
    this.dir = dir;
    this.#node = node;
    Deno.mkdirSync(dir, { recursive: true });
  }

  path(vmid: number): string {
    return join(this.dir, `${vmid}.conf`);
  }

  read(vmid: number): ParsedCtConfig | undefined {
    const text = readTextIfExists(this.path(vmid));
    return text === undefined ? undefined : parseCtConfig(vmid, text);
  }

  /** The config, or PVE's 500 for a CT that is not on this node. */
  load(vmid: number): ParsedCtConfig {
    const parsed = this.read(vmid);
    if (parsed === undefined) {
      throw handlerError(
        `Configuration file 'nodes/${this.#node}/lxc/${vmid}.conf' does not exist`,
      );
    }
    return parsed;
  }

  write(vmid: number, config: CtConfig): string {
    const text = formatCtConfig(config);
    rewriteFile(this.path(vmid), text);
    return text;
  }

  remove(vmid: number): void {
    removeIfExists(this.path(vmid));
  }

  vmids(): number[] {
    return listDir(this.dir)
      .map((name) => /^(\d+)\.conf$/.exec(name)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }
}
