/**
 * The node's storages, laid out as PVE's directory storage lays them out: `vztmpl` volumes
 * are files under `<storage>/template/cache/`, CT root disks are small records under
 * `<storage>/images/<vmid>/`. Enough for templates, OCI pulls and content listings.
 */
import { join } from "node:path";
import { listDir, readJsonIfExists, removeIfExists, writeFileAtomic } from "./files.ts";
import { handlerError } from "./http_error.ts";

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
  size: number;
  ctime: number;
}

const templateFormats: readonly [RegExp, string][] = [
  [/\.tar\.gz$|\.tgz$/, "tgz"],
  [/\.tar\.xz$/, "txz"],
  [/\.tar\.zst$/, "tzst"],
  [/\.tar\.bz2$/, "tbz2"],
  [/\.tar$/, "tar"],
];

export class SimStorage {
  readonly #dir: string;
  readonly #storages: Map<string, StorageDefinition>;

  constructor(dir: string, storages: readonly StorageDefinition[]) {
    this.#dir = dir;
    this.#storages = new Map(storages.map((s) => [s.id, s]));
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

  writeTemplate(id: string, filename: string, data: Uint8Array): string {
    Deno.mkdirSync(this.templateDir(id), { recursive: true });
    writeFileAtomic(join(this.templateDir(id), filename), data);
    return `${id}:vztmpl/${filename}`;
  }

  /** Allocates a CT disk (`vm-<vmid>-disk-N`) and returns its volid. */
  allocateDisk(id: string, vmid: number, sizeGiB: number, now: number): string {
    this.require(id, "rootdir");
    const dir = join(this.#dir, id, "images", String(vmid));
    Deno.mkdirSync(dir, { recursive: true });
    const taken = new Set(listDir(dir));
    let n = 0;
    while (taken.has(`vm-${vmid}-disk-${n}`)) n++;
    const record: DiskRecord = {
      size: Math.round(sizeGiB * 1024 ** 3),
      ctime: Math.floor(now / 1000),
    };
    writeFileAtomic(join(dir, `vm-${vmid}-disk-${n}`), JSON.stringify(record));
    return `${id}:vm-${vmid}-disk-${n}`;
  }

  /** Removes every disk of a CT on every storage. */
  freeDisks(vmid: number): void {
    for (const id of this.#storages.keys()) {
      const dir = join(this.#dir, id, "images", String(vmid));
      for (const name of listDir(dir)) removeIfExists(join(dir, name));
      removeIfExists(dir);
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
      for (const vmidDir of listDir(join(this.#dir, id, "images"))) {
        const vmid = Number(vmidDir);
        if (filter.vmid !== undefined && filter.vmid !== vmid) continue;
        for (const name of listDir(join(this.#dir, id, "images", vmidDir))) {
          const disk = readJsonIfExists<DiskRecord>(join(this.#dir, id, "images", vmidDir, name));
          if (disk === undefined) continue;
          volumes.push({
            volid: `${id}:${name}`,
            content: "rootdir",
            format: "raw",
            size: disk.size,
            ctime: disk.ctime,
            vmid,
          });
        }
      }
    }
    return volumes.sort((a, b) => a.volid.localeCompare(b.volid));
  }

  /** Deletes a volume; false if it did not exist. */
  deleteVolume(volid: string): boolean {
    const template = this.templatePath(volid);
    if (template !== undefined) return removeIfExists(template);
    const disk = /^([^:]+):(vm-(\d+)-disk-\d+)$/.exec(volid);
    if (disk === null || !this.#storages.has(disk[1]!)) return false;
    return removeIfExists(join(this.#dir, disk[1]!, "images", disk[3]!, disk[2]!));
  }

  /** Used and total bytes of a storage, for status listings. */
  usage(id: string): { used: number; total: number } {
    const used = this.list(id, {}).reduce((sum, v) => sum + v.size, 0);
    return { used, total: this.get(id).total ?? 100 * 1024 ** 3 };
  }
}

function contentName(content: string): string {
  return content === "vztmpl" ? "container templates" : `content type '${content}'`;
}

/** pve-storage's file name normalisation for pulls and uploads. */
export function normalizeFilename(name: string): string {
  return name.replace(/^.*\//, "").replace(/[^a-zA-Z0-9_.-]/g, "_");
}
