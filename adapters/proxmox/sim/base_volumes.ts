/**
 * Each template unpacked once into a base volume, and each CT's root a copy of it: what a
 * linked clone from a template CT is on PVE's ZFS, LVM-thin or btrfs storage, so a CT's create
 * costs a copy, not a decompress and unpack. (A real node's `pct create` from an archive
 * unpacks every time.) A base volume goes when its template file is gone.
 */
import { lchownSync, lutimesSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { unpackOciArchive } from "../../oci/unpack_layers.ts";
import type { TaskLog } from "./driver.ts";
import { pathExists, removeIfExists } from "./files.ts";

export class BaseVolumes {
  constructor(readonly dir: string) {}

  /** Fills `rootfs` (absent) with the template's files. */
  async cloneInto(templatePath: string, rootfs: string, log: TaskLog): Promise<void> {
    this.#prune();
    const base = await this.#baseOf(templatePath, log);
    Deno.mkdirSync(dirname(rootfs), { recursive: true });
    copyTree(base, rootfs);
  }

  async #baseOf(templatePath: string, log: TaskLog): Promise<string> {
    const info = Deno.statSync(templatePath);
    const key = `${basename(templatePath).replace(/[^A-Za-z0-9._-]/g, "_")}-${info.size}-` +
      `${info.mtime?.getTime() ?? 0}`;
    const base = join(this.dir, key);
    const rootfs = join(base, "rootfs");
    if (pathExists(rootfs)) return rootfs;
    log.log(`extracting archive '${templatePath}'`);
    Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
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

  /** Drops base volumes whose template was removed, and scratch left by a crash. */
  #prune(): void {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(this.dir)];
    } catch {
      return;
    }
    for (const entry of entries) {
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
      if (!pathExists(source)) removeIfExists(path, true);
    }
  }
}

/**
 * Copies a tree as unpacking made it: owners, modes, times, symlinks, hard links (once).
 * In process: for an image's few hundred entries a `cp -a` costs more to spawn than to run.
 */
function copyTree(from: string, to: string): void {
  const linked = new Map<string, string>();
  const dirs: [string, Deno.FileInfo][] = [];
  const copy = (src: string, dst: string, info: Deno.FileInfo) => {
    if (info.isDirectory) {
      Deno.mkdirSync(dst);
      for (const entry of Deno.readDirSync(src)) {
        copy(join(src, entry.name), join(dst, entry.name), Deno.lstatSync(join(src, entry.name)));
      }
      dirs.push([dst, info]); // times last: filling a directory changes its mtime
      return;
    }
    const key = `${info.dev}:${info.ino}`;
    const first = (info.nlink ?? 1) > 1 ? linked.get(key) : undefined;
    if (first !== undefined) return Deno.linkSync(first, dst);
    if (info.isSymlink) Deno.symlinkSync(Deno.readLinkSync(src), dst);
    else Deno.copyFileSync(src, dst);
    if ((info.nlink ?? 1) > 1) linked.set(key, dst);
    keepMetadata(dst, info);
  };
  copy(from, to, Deno.lstatSync(from));
  for (const [dir, info] of dirs) keepMetadata(dir, info);
}

function keepMetadata(path: string, info: Deno.FileInfo): void {
  lchownSync(path, info.uid ?? 0, info.gid ?? 0);
  if (!info.isSymlink) Deno.chmodSync(path, (info.mode ?? 0o644) & 0o7777);
  const mtime = info.mtime ?? new Date(0);
  lutimesSync(path, mtime, mtime);
}
