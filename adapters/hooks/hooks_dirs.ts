/**
 * The hooks.d directories, in order: every `*.json` file, a file in a later directory masking
 * the same name in an earlier one (as CRI-O reads `/usr/share/containers/oci/hooks.d` then
 * `/etc/containers/oci/hooks.d`), the result in lexical order of the names. Read again when a
 * directory changes; a bad file is skipped with its reason logged once.
 */
import { join } from "node:path";
import type { Logger } from "../../lib/log.ts";
import { type HookConfig, parseHookConfig } from "./hook_config.ts";

export const defaultHooksDirs = [
  "/usr/share/containers/oci/hooks.d",
  "/etc/containers/oci/hooks.d",
];

export class HooksDirs {
  #signature: string | undefined;
  #hooks: HookConfig[] = [];

  constructor(readonly dirs: string[], readonly log: Logger) {}

  current(): HookConfig[] {
    const files = this.#files();
    const signature = [...files.values()].map(({ path, stamp }) => `${path}:${stamp}`).join("\n");
    if (signature !== this.#signature) {
      this.#signature = signature;
      this.#hooks = [...files.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
        .flatMap(([name, { path }]) => {
          try {
            return [parseHookConfig(Deno.readTextFileSync(path), name)];
          } catch (error) {
            this.log.warn("skipping an OCI hook config", {
              file: path,
              reason: (error as Error).message,
            });
            return [];
          }
        });
    }
    return this.#hooks;
  }

  /** name → the file that wins, with a stamp that changes when the file does. */
  #files(): Map<string, { path: string; stamp: string }> {
    const files = new Map<string, { path: string; stamp: string }>();
    for (const dir of this.dirs) {
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(dir)];
      } catch {
        continue; // a directory that does not exist holds no hooks
      }
      for (const entry of entries) {
        if (!entry.name.endsWith(".json")) continue;
        const path = join(dir, entry.name);
        try {
          const info = Deno.statSync(path);
          if (!info.isFile) continue;
          files.set(entry.name, { path, stamp: `${info.size}:${info.mtime?.getTime()}` });
        } catch {
          // removed while listed
        }
      }
    }
    return files;
  }
}
