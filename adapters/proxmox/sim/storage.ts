/**
 * The node's storages: `vztmpl` volumes are real files under `<storage>/template/cache/`,
 * as PVE's directory storage keeps them; CT root disks are journaled records (the memory
 * driver has no disk contents). Enough for templates, OCI pulls and content listings.
 */
import { join } from "node:path";
import { listDir, removeIfExists } from "./files.ts";
import { handlerError } from "./http_error.ts";
import { Journal, LazyEntries } from "./journal.ts";

export interface StorageDefinition {
  id: string;
  /** PVE storage type: `dir`, `lvmthin`, `zfspool`, … (only reported). */
  type: string;
  content: readonly string[];
  /** Capacity reported in bytes. */
  total?: number;
}

/** What a fresh PVE install has. */
export const defaultStorages: readonly StorageDefinition[] = [
  { id: "local", type: "dir", content: ["iso", "vztmpl", "backup", "import"] },
  { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"] },
];

export interface Volume {
  volid: string;
  content: string;
  format: string;
  size: number;
  ctime: number;
  vmid?: number;
}

interface DiskRecord {
  volid: string;
  vmid: number;
  size: number;
  ctime: number;
}

/** One journal line: a disk allocated, or freed (`size` null). */
type DiskEntry = Omit<DiskRecord, "size"> & { size: number | null };

const templateFormats: readonly [RegExp, string][] = [
  [/\.tar\.gz$|\.tgz$/, "tgz"],
  [/\.tar\.xz$/, "txz"],
  [/\.tar\.zst$/, "tzst"],
  [/\.tar\.bz2$/, "tbz2"],
  [/\.tar$/, "tar"],
];

/** How each disk journal line starts (JSON.stringify keeps the key order it was written in). */
const VOLID_FIELD = '{"volid":"';

export class SimStorage {
  readonly #dir: string;
  readonly #storages: Map<string, StorageDefinition>;
  readonly #disks: LazyEntries<string, DiskRecord>;
  readonly #journal: Journal<DiskEntry>;

  constructor(dir: string, storages: readonly StorageDefinition[]) {
    this.#dir = dir;
    this.#storages = new Map(storages.map((s) => [s.id, s]));
    Deno.mkdirSync(dir, { recursive: true });
    this.#journal = new Journal(join(dir, "disks.jsonl"));
    this.#disks = new LazyEntries({
      lines: this.#journal.readLines(),
      keyOf: (line) =>
        line.startsWith(VOLID_FIELD)
          ? line.slice(VOLID_FIELD.length, line.indexOf('"', VOLID_FIELD.length))
          : undefined,
      removes: (line) => line.includes('"size":null'),
      parse: (line) => JSON.parse(line) as DiskRecord,
    });
  }

  definitions(): StorageDefinition[] {
    return [...this.#storages.values()];
  }

  /** The storage, or PVE's 500 for an unknown one. */
  get(id: string): StorageDefinition {
    const storage = this.#storages.get(id);
    if (storage === undefined) throw handlerError(`storage '${id}' does not exist`);
    return storage;
  }

  /** Checks that a storage holds this content type, as PVE checks before using it. */
  require(id: string, content: string): StorageDefinition {
    const storage = this.get(id);
    if (!storage.content.includes(content)) {
      throw handlerError(`storage '${id}' does not support ${contentName(content)}`);
    }
    return storage;
  }

  templateDir(id: string): string {
    return join(this.#dir, id, "template", "cache");
  }

  /** The file of a `storage:vztmpl/<file>` volume, if it exists. */
  templatePath(volid: string): string | undefined {
    const m = /^([^:]+):vztmpl\/([^/]+)$/.exec(volid);
    if (m === null || !this.#storages.has(m[1]!)) return undefined;
    const path = join(this.templateDir(m[1]!), m[2]!);
    try {
      Deno.statSync(path);
      return path;
    } catch {
      return undefined;
    }
  }

  /** Takes an uploaded file into the storage's own staging name, before its copy task runs. */
  stageUpload(id: string, spooled: string): string {
    const dir = this.templateDir(id);
    Deno.mkdirSync(dir, { recursive: true });
    const hex = [...crypto.getRandomValues(new Uint8Array(6))]
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    const staged = join(dir, `.upload-${hex}.part`);
    moveFile(spooled, staged);
    return staged;
  }

  /** Puts a staged upload in place under its file name (replacing one of that name). */
  commitUpload(id: string, filename: string, staged: string): string {
    Deno.renameSync(staged, join(this.templateDir(id), filename));
    return `${id}:vztmpl/${filename}`;
  }

  /** Allocates a CT disk (`vm-<vmid>-disk-N`) and returns its volid. */
  allocateDisk(id: string, vmid: number, sizeGiB: number, now: number): string {
    this.require(id, "rootdir");
    let n = 0;
    while (this.#disks.has(`${id}:vm-${vmid}-disk-${n}`)) n++;
    const record: DiskRecord = {
      volid: `${id}:vm-${vmid}-disk-${n}`,
      vmid,
      size: Math.round(sizeGiB * 1024 ** 3),
      ctime: Math.floor(now / 1000),
    };
    this.#disks.set(record.volid, record);
    this.#journal.append(record);
    return record.volid;
  }

  /** The disks allocated for a CT. */
  disksOf(vmid: number): string[] {
    return [...this.#disks.values()].filter((d) => d.vmid === vmid).map((d) => d.volid);
  }

  close(): void {
    this.#journal.close();
  }

  /** Removes every disk of a CT on every storage. */
  freeDisks(vmid: number): void {
    for (const disk of [...this.#disks.values()]) {
      if (disk.vmid === vmid) this.#free(disk);
    }
  }

  #free(disk: DiskRecord): void {
    this.#disks.delete(disk.volid);
    this.#journal.append({ ...disk, size: null });
    if (this.#journal.lines > 4 * this.#disks.size + 1000) {
      this.#journal.rewrite([...this.#disks.values()]);
    }
  }

  list(id: string, filter: { content?: string; vmid?: number }): Volume[] {
    const storage = this.get(id);
    const volumes: Volume[] = [];
    if (storage.content.includes("vztmpl") && (filter.content ?? "vztmpl") === "vztmpl") {
      for (const name of listDir(this.templateDir(id))) {
        const format = templateFormats.find(([re]) => re.test(name))?.[1];
        if (format === undefined || filter.vmid !== undefined) continue;
        const info = Deno.statSync(join(this.templateDir(id), name));
        volumes.push({
          volid: `${id}:vztmpl/${name}`,
          content: "vztmpl",
          format,
          size: info.size,
          ctime: Math.floor((info.mtime?.getTime() ?? 0) / 1000),
        });
      }
    }
    if (storage.content.includes("rootdir") && (filter.content ?? "rootdir") === "rootdir") {
      for (const disk of this.#disks.values()) {
        if (!disk.volid.startsWith(`${id}:`)) continue;
        if (filter.vmid !== undefined && filter.vmid !== disk.vmid) continue;
        volumes.push({ ...disk, content: "rootdir", format: "raw" });
      }
    }
    return volumes.sort((a, b) => a.volid.localeCompare(b.volid));
  }

  /** Deletes a volume; false if it did not exist. */
  deleteVolume(volid: string): boolean {
    const template = this.templatePath(volid);
    if (template !== undefined) return removeIfExists(template);
    const disk = this.#disks.get(volid);
    if (disk === undefined) return false;
    this.#free(disk);
    return true;
  }

  /** Used and total bytes of a storage, for status listings. */
  usage(id: string): { used: number; total: number } {
    const used = this.list(id, {}).reduce((sum, v) => sum + v.size, 0);
    return { used, total: this.get(id).total ?? 100 * 1024 ** 3 };
  }
}

/** Renames, or copies and removes across file systems (as PVE copies from /var/tmp). */
function moveFile(from: string, to: string): void {
  try {
    Deno.renameSync(from, to);
  } catch (error) {
    if (
      !(error instanceof Deno.errors.NotSupported) && !/EXDEV|cross-device/i.test(String(error))
    ) {
      throw error;
    }
    Deno.copyFileSync(from, to);
    Deno.removeSync(from);
  }
}

function contentName(content: string): string {
  return content === "vztmpl" ? "container templates" : `content type '${content}'`;
}

/** pve-storage's file name normalisation for pulls and uploads. */
export function normalizeFilename(name: string): string {
  return name.replace(/^.*\//, "").replace(/[^a-zA-Z0-9_.-]/g, "_");
}
