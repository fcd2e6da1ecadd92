/**
 * Unpacks an image's layers into a root filesystem, in order, as PVE 9.1 unpacks an OCI
 * archive into a new CT's volume: gzip or plain tar layers; `.wh.NAME` whiteouts remove what
 * a lower layer put there and `.wh..wh..opq` empties a directory; owners, modes and mtimes
 * kept; symlinks and hard links made. Device nodes and FIFOs are skipped with a note (a CT
 * gets its /dev from LXC). No entry may reach outside the root: `..` components and paths
 * through a symlink are refused.
 */
import { lchownSync, lutimesSync } from "node:fs";
import { join } from "node:path";
import {
  fileSource,
  streamSource,
  type TarEntry,
  TarFormatError,
  TarReader,
} from "../../lib/tar.ts";
import { readTarEntry } from "./tar_file.ts";

export class UnpackError extends Error {}

const maxDocument = 8 * 1024 * 1024;
const whiteoutPrefix = ".wh.";
const opaqueMarker = ".wh..wh..opq";

/** Unpacks the (first) image of the OCI archive at `archive` into `rootfs`. */
export async function unpackOciArchive(
  archive: string,
  rootfs: string,
  note: (line: string) => void,
): Promise<{ layers: number; entries: number }> {
  const index = jsonEntry(await readTarEntry(archive, "index.json", maxDocument), "index.json");
  const manifestDigest = index?.manifests?.[0]?.digest;
  if (typeof manifestDigest !== "string") throw new UnpackError("index.json names no manifest");
  const manifest = jsonEntry(
    await readTarEntry(archive, blobPath(manifestDigest), maxDocument),
    manifestDigest,
  );
  const layers: unknown[] = Array.isArray(manifest?.layers) ? manifest.layers : [];
  Deno.mkdirSync(rootfs, { recursive: true });
  let entries = 0;
  for (const layer of layers) {
    const digest = (layer as { digest?: unknown }).digest;
    if (typeof digest !== "string") throw new UnpackError("a layer has no digest");
    entries += await unpackLayer(archive, blobPath(digest), rootfs, note);
  }
  return { layers: layers.length, entries };
}

async function unpackLayer(
  archive: string,
  entryName: string,
  rootfs: string,
  note: (line: string) => void,
): Promise<number> {
  const file = await Deno.open(archive);
  try {
    const outer = new TarReader(fileSource(file));
    for (let entry = await outer.next(); entry !== undefined; entry = await outer.next()) {
      if (entry.type !== "file" || entry.name !== entryName) continue;
      const chunks = outer.data();
      const first = await chunks.next();
      if (first.done) return 0;
      const head = first.value;
      const whole = async function* () {
        yield head;
        yield* chunks;
      };
      const gzip = head[0] === 0x1f && head[1] === 0x8b;
      const body: AsyncIterable<Uint8Array> = gzip
        ? ReadableStream.from(whole()).pipeThrough(
          new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
        )
        : whole();
      return await applyLayer(new TarReader(streamSource(body)), rootfs, note);
    }
    throw new UnpackError(`layer ${entryName} is not in the archive`);
  } catch (error) {
    if (error instanceof TarFormatError) throw new UnpackError(`${entryName}: ${error.message}`);
    throw error;
  } finally {
    file.close();
  }
}

async function applyLayer(
  reader: TarReader,
  rootfs: string,
  note: (line: string) => void,
): Promise<number> {
  let count = 0;
  /** Directories' modes and times are set last: writing into them would change them. */
  const dirs: { path: string; entry: TarEntry }[] = [];
  for (let entry = await reader.next(); entry !== undefined; entry = await reader.next()) {
    count++;
    const name = entry.name.replace(/\/+$/, "");
    if (name === "" || name === ".") continue;
    const parts = name.split("/");
    if (parts.some((p) => p === ".." || p === "")) {
      note(`skipped "${entry.name}": path leaves the root`);
      continue;
    }
    const base = parts[parts.length - 1]!;
    const parent = join(rootfs, ...parts.slice(0, -1));
    if (!insideRoot(rootfs, parts.slice(0, -1))) {
      note(`skipped "${entry.name}": a parent is a symlink or not a directory`);
      continue;
    }
    if (base === opaqueMarker) {
      for (const child of listNames(parent)) removeAll(join(parent, child));
      continue;
    }
    if (base.startsWith(whiteoutPrefix)) {
      removeAll(join(parent, base.slice(whiteoutPrefix.length)));
      continue;
    }
    const path = join(parent, base);
    Deno.mkdirSync(parent, { recursive: true });
    switch (entry.type) {
      case "directory": {
        const existing = lstat(path);
        if (existing !== undefined && !existing.isDirectory) removeAll(path);
        if (existing === undefined || !existing.isDirectory) Deno.mkdirSync(path);
        dirs.push({ path, entry });
        continue;
      }
      case "file": {
        removeAll(path);
        const out = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
        try {
          for await (const chunk of reader.data()) await writeAll(out, chunk);
        } finally {
          out.close();
        }
        break;
      }
      case "symlink":
        removeAll(path);
        Deno.symlinkSync(entry.linkname, path);
        break;
      case "hardlink": {
        const targetParts = entry.linkname.replace(/^\.?\/+/, "").split("/");
        if (targetParts.includes("..") || !insideRoot(rootfs, targetParts.slice(0, -1))) {
          note(`skipped hard link "${entry.name}": target leaves the root`);
          continue;
        }
        removeAll(path);
        Deno.linkSync(join(rootfs, ...targetParts), path);
        continue; // shares the target's owner and mode
      }
      default:
        note(`skipped ${entry.type} "${entry.name}"`);
        continue;
    }
    setOwnerModeTime(path, entry);
  }
  for (const { path, entry } of dirs.reverse()) setOwnerModeTime(path, entry);
  return count;
}

function setOwnerModeTime(path: string, entry: TarEntry): void {
  lchownSync(path, entry.uid, entry.gid);
  if (entry.type !== "symlink") Deno.chmodSync(path, entry.mode & 0o7777);
  lutimesSync(path, entry.mtime, entry.mtime);
}

/** Each parent component is a real directory (or absent): nothing is reached through a link. */
function insideRoot(rootfs: string, parents: readonly string[]): boolean {
  let path = rootfs;
  for (const part of parents) {
    path = join(path, part);
    const info = lstat(path);
    if (info === undefined) return true;
    if (!info.isDirectory) return false;
  }
  return true;
}

function lstat(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw error;
  }
}

function listNames(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

function removeAll(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length;) done += await file.write(data.subarray(done));
}

function blobPath(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

// deno-lint-ignore no-explicit-any
function jsonEntry(data: Uint8Array | undefined, what: string): any {
  if (data === undefined) throw new UnpackError(`${what} is not in the archive`);
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new UnpackError(`${what} is not JSON`);
  }
}
