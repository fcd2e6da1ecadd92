/**
 * Images as CT templates in a Proxmox `vztmpl` storage: each image's OCI archive, uploaded
 * through the API under a name made from its manifest digest, so the name cannot collide
 * across registries or tags, and the same content is one file. An archive the storage
 * already has (same name, same size: another node's upload, or an earlier life of this
 * state dir) is not uploaded again.
 */
import type { ContentStore } from "../../adapters/oci/content_store.ts";
import { digestHex } from "../../adapters/oci/digest.ts";
import { layoutArchive, type LayoutImage } from "../../adapters/oci/layout_archive.ts";
import { type ProxmoxApi, PveNotFoundError } from "../../adapters/proxmox/mod.ts";

export interface TemplateStoreOptions {
  api: ProxmoxApi;
  /** The `vztmpl` storage. */
  storage: string;
  content: ContentStore;
}

export class TemplateStore {
  readonly storage: string;
  readonly #api: ProxmoxApi;
  readonly #content: ContentStore;

  constructor(options: TemplateStoreOptions) {
    this.storage = options.storage;
    this.#api = options.api;
    this.#content = options.content;
  }

  /** `pve-cri-<manifest hex>.tar`: only characters PVE keeps in a file name. */
  fileName(manifestDigest: string): string {
    return `pve-cri-${digestHex(manifestDigest)}.tar`;
  }

  volidOf(manifestDigest: string): string {
    return `${this.storage}:vztmpl/${this.fileName(manifestDigest)}`;
  }

  /** Uploads the image's archive unless the storage has it. */
  async store(
    image: LayoutImage,
    options: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<{ volid: string; uploaded: boolean }> {
    const archive = layoutArchive(this.#content, image);
    const filename = this.fileName(image.manifest.digest);
    const volid = this.volidOf(image.manifest.digest);
    const present = await this.#api.listStorageContent({
      storage: this.storage,
      content: "vztmpl",
    });
    if (present.some((v) => v.volid === volid && v.size === archive.length)) {
      options.onProgress?.(archive.length, archive.length);
      return { volid, uploaded: false };
    }
    const signal = options.signal;
    const upid = await this.#api.uploadToStorage({
      storage: this.storage,
      filename,
      content: "vztmpl",
      data: {
        length: archive.length,
        async *chunks() {
          let done = 0;
          for await (const chunk of archive.chunks(signal)) {
            yield chunk;
            done += chunk.length;
            options.onProgress?.(done, archive.length);
          }
        },
      },
    });
    await this.#api.waitForTask(upid, signal === undefined ? {} : { signal });
    return { volid, uploaded: true };
  }

  /**
   * Has PVE's own `oci-registry-pull` fetch an image (anonymous tag references, when the
   * config says `images.pull: "proxmox"`), under a name of pve-cri's.
   */
  async pullByProxmox(
    reference: string,
    manifestDigest: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ volid: string; uploaded: boolean }> {
    const filename = `pve-cri-pve-${digestHex(manifestDigest)}`;
    const volid = `${this.storage}:vztmpl/${filename}.tar`;
    const present = await this.#api.listStorageContent({
      storage: this.storage,
      content: "vztmpl",
    });
    if (present.some((v) => v.volid === volid)) return { volid, uploaded: false };
    const pulled = await this.#api.pullOciImage({ storage: this.storage, reference, filename });
    await this.#api.waitForTask(
      pulled.upid,
      options.signal === undefined ? {} : { signal: options.signal },
    );
    return { volid: pulled.volid, uploaded: true };
  }

  /** Removes a template; one already gone is fine. */
  async remove(volid: string): Promise<void> {
    try {
      const upid = await this.#api.deleteVolume({ volid, delay: 5 });
      if (upid !== null) await this.#api.waitForTask(upid);
    } catch (error) {
      if (error instanceof PveNotFoundError) return;
      if (error instanceof Error && /does not exist/.test(error.message)) return;
      throw error;
    }
  }
}
