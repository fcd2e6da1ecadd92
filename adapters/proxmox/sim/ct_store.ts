/**
 * The CT config files of the simulated node, one per CT as in `/etc/pve/lxc/<vmid>.conf`.
 * Read from disk on every access, as PVE reads pmxcfs, so an edit to the file (what root
 * does on a real node) is seen at once. Only the parse of an unchanged text is reused.
 */
import { join } from "node:path";
import { type CtConfig, formatCtConfig, parseCtConfig, type ParsedCtConfig } from "./ct_config.ts";
import { existsSync } from "node:fs";
import { listDir, readTextIfExists, removeIfExists, rewriteFile } from "./files.ts";
import { handlerError } from "./http_error.ts";

export class CtStore {
  readonly dir: string;
  readonly #node: string;
  /** The last text read of each CT's file and its parse, never handed out (callers edit). */
  readonly #parsed = new Map<number, { text: string; parsed: ParsedCtConfig }>();

  constructor(dir: string, node: string) {
    this.dir = dir;
    this.#node = node;
    Deno.mkdirSync(dir, { recursive: true });
  }

  path(vmid: number): string {
    return join(this.dir, `${vmid}.conf`);
  }

  /** Asked before a create: a thrown NotFound would cost ten times this check. */
  exists(vmid: number): boolean {
    return existsSync(this.path(vmid));
  }

  read(vmid: number): ParsedCtConfig | undefined {
    const text = readTextIfExists(this.path(vmid));
    if (text === undefined) {
      this.#parsed.delete(vmid);
      return undefined;
    }
    let last = this.#parsed.get(vmid);
    if (last?.text !== text) {
      last = { text, parsed: parseCtConfig(vmid, text) };
      this.#parsed.set(vmid, last);
    }
    return copyParsed(last.parsed);
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
    this.#parsed.delete(vmid);
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

function copyParsed({ config, digest, warnings }: ParsedCtConfig): ParsedCtConfig {
  const copy: CtConfig = {
    options: { ...config.options },
    lxc: config.lxc.map(([key, value]) => [key, value]),
  };
  if (config.description !== undefined) copy.description = config.description;
  return { config: copy, digest, warnings: [...warnings] };
}
