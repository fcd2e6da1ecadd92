/**
 * The node's pod CIDRs, as the kubelet hands them over in UpdateRuntimeConfig (once, when it
 * learns them): kept on disk, since the kubelet does not send them again after pve-cri
 * restarts, and given to CNI plugins that take `ipRanges`.
 */
import { dirname } from "node:path";

export class PodCidrs {
  #cidrs: string[];

  constructor(readonly file: string) {
    try {
      const saved = JSON.parse(Deno.readTextFileSync(file));
      this.#cidrs = Array.isArray(saved) ? saved.filter((c) => typeof c === "string") : [];
    } catch {
      this.#cidrs = [];
    }
  }

  get(): string[] {
    return this.#cidrs;
  }

  set(cidrs: string[]): void {
    Deno.mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    Deno.writeTextFileSync(tmp, JSON.stringify(cidrs));
    Deno.renameSync(tmp, this.file);
    this.#cidrs = cidrs;
  }
}
