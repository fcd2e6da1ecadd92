/**
 * Each template unpacked once into a read-only base volume that CTs are linked clones of: a
 * CT's root is an overlay of its own on the base, as a linked clone of a template CT is a
 * copy-on-write snapshot on PVE's ZFS, LVM-thin or btrfs storage. A create records which base
 * the CT is cloned from — one appended line, no copy, no unpack (a real node's `pct create`
 * from an archive unpacks every time). A base goes once its template is gone and no CT is
 * cloned from it: looked at when a clone is released, a template deleted, a new base unpacked
 * and the simulator started.
 */
import { basename, join } from "node:path";
import { unpackOciArchive } from "../../oci/unpack_layers.ts";
import type { TaskLog } from "./driver.ts";
import { pathExists, removeIfExists } from "./files.ts";
import { Journal } from "./journal.ts";

interface CloneEntry {
  vmid: number;
  /** The base root the CT is cloned from; null once released. */
  base: string | null;
}

export class BaseVolumes {
  readonly #clones = new Map<number, string>();
  readonly #journal: Journal<CloneEntry>;

  constructor(readonly dir: string) {
    if (dir.includes(":")) {
      throw new TypeError(`base volume dir has a ':' LXC cannot parse: ${dir}`);
    }
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // An unpack a crash cut short: one simulator owns its state dir, so none runs now.
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.name.startsWith(".unpack-")) removeIfExists(join(dir, entry.name), true);
    }
    this.#journal = new Journal(join(dir, "clones.jsonl"));
    for (const entry of this.#journal.read()) {
      if (entry.base === null) this.#clones.delete(entry.vmid);
      else this.#clones.set(entry.vmid, entry.base);
    }
    // A crash between a template's deletion and its base's.
    this.prune();
  }

  /** Records the CT as a clone of the template's base (unpacked on first use); the base. */
  async clone(vmid: number, templatePath: string, log: TaskLog): Promise<string> {
    const base = await this.#baseOf(templatePath, log);
    this.#clones.set(vmid, base);
    this.#journal.append({ vmid, base });
    return base;
  }

  /** The base root a CT is cloned from; undefined for one that is not a clone. */
  baseOf(vmid: number): string | undefined {
    return this.#clones.get(vmid);
  }

  /** The CT is gone: its base may go too. */
  release(vmid: number): void {
    if (!this.#clones.delete(vmid)) return;
    this.#journal.append({ vmid, base: null });
    if (this.#journal.lines > 4 * (this.#clones.size + 100)) {
      this.#journal.rewrite([...this.#clones].map(([vmid, base]) => ({ vmid, base })));
    }
    this.prune();
  }

  close(): void {
    this.#journal.close();
  }

  /** The unpacked root of a template, made on first use; never written to after. */
  async #baseOf(templatePath: string, log: TaskLog): Promise<string> {
    const info = Deno.statSync(templatePath);
    const key = `${basename(templatePath).replace(/[^A-Za-z0-9._-]/g, "_")}-${info.size}-` +
      `${info.mtime?.getTime() ?? 0}`;
    const base = join(this.dir, key);
    const rootfs = join(base, "rootfs");
    if (pathExists(rootfs)) return rootfs;
    this.prune();
    log.log(`extracting archive '${templatePath}'`);
    // Unpacked aside and renamed into place: a concurrent create of the same template, or a
    // crash half way, never leaves a half base behind the name.
    const scratch = Deno.makeTempDirSync({ dir: this.dir, prefix: ".unpack-" });
    try {
      const { layers } = await unpackOciArchive(
        templatePath,
        join(scratch, "rootfs"),
        (line) => log.warn(line),
      );
      Deno.writeTextFileSync(join(scratch, "source"), templatePath);
      log.log(`unpacked ${layers} layer(s)`);
      try {
        Deno.renameSync(scratch, base);
      } catch (error) {
        if (!pathExists(rootfs)) throw error; // not a lost race
      }
    } finally {
      removeIfExists(scratch, true);
    }
    return rootfs;
  }

  /**
   * Drops base volumes whose template was removed and that no CT is cloned from, and scratch
   * left by a crash.
   */
  prune(): void {
    const used = new Set(this.#clones.values());
    for (const entry of Deno.readDirSync(this.dir)) {
      if (!entry.isDirectory) continue;
      const path = join(this.dir, entry.name);
      if (entry.name.startsWith(".unpack-")) {
        // Another create may be unpacking right now: only an old one is a crash's.
        const age = Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0);
        if (age > 3_600_000) removeIfExists(path, true);
        continue;
      }
      let source: string;
      try {
        source = Deno.readTextFileSync(join(path, "source"));
      } catch {
        continue;
      }
      if (!pathExists(source) && !used.has(join(path, "rootfs"))) removeIfExists(path, true);
    }
  }
}
