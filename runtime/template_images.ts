/**
 * Images as CT templates in a Proxmox `vztmpl` storage: a pull records an OCI archive under
 * the file name the reference maps to; the image id is derived from the canonical reference
 * until image handling reads real digests (its own issue).
 */
import { NotFoundError } from "../lib/errors.ts";
import { type ProxmoxApi, PveNotFoundError, type StorageVolume } from "../adapters/proxmox/mod.ts";
import type { ImageView } from "./api.ts";
import {
  canonicalReference,
  parseImageReference,
  referenceOfTemplate,
  repoDigest,
  repoTag,
  templateFileName,
} from "./image_reference.ts";

export class TemplateImages {
  readonly #api: ProxmoxApi;
  readonly #storage: string;
  readonly #ttlMs: number;
  /** The storage listing, reused for a moment: every CreateContainer resolves its image. */
  #cached: { at: number; images: Promise<ImageView[]> } | undefined;
  /** The env Proxmox gives a CT created from each template (NUL-separated), once seen. */
  readonly #envs = new Map<string, string>();

  constructor(options: { api: ProxmoxApi; storage: string; cacheMs?: number }) {
    this.#api = options.api;
    this.#storage = options.storage;
    this.#ttlMs = options.cacheMs ?? 2000;
  }

  /** Pulls (records) an image; pulling one that is present is a no-op. */
  async pull(reference: string, signal?: AbortSignal): Promise<ImageView> {
    const canonical = canonicalReference(parseImageReference(reference));
    const present = await this.find(canonical);
    if (present !== undefined) return present;
    // Proxmox names the file itself from `filename`; ours maps back to the reference.
    const { upid } = await this.#api.pullOciImage({
      storage: this.#storage,
      reference: canonical,
      filename: templateFileName(canonical),
    });
    await this.#api.waitForTask(upid, signal === undefined ? {} : { signal });
    this.#forget();
    const pulled = await this.find(canonical);
    if (pulled === undefined) {
      throw new NotFoundError(
        `Pulled "${canonical}" but its template is not in "${this.#storage}"`,
      );
    }
    return pulled;
  }

  /** The env of CTs made from a template, if one was seen since it was pulled. */
  envOf(volid: string): string | undefined {
    return this.#envs.get(volid);
  }

  rememberEnv(volid: string, env: string): void {
    this.#envs.set(volid, env);
  }

  /** A template was pulled or removed: what was learned about the old one no longer holds. */
  #forget(): void {
    this.#cached = undefined;
    this.#envs.clear();
  }

  list(): Promise<ImageView[]> {
    const now = Date.now();
    if (this.#cached === undefined || now - this.#cached.at > this.#ttlMs) {
      const images = this.#read();
      this.#cached = { at: now, images };
      images.catch(() => {
        if (this.#cached?.images === images) this.#cached = undefined;
      });
    }
    return this.#cached.images;
  }

  async #read(): Promise<ImageView[]> {
    const volumes = await this.#api.listStorageContent({
      storage: this.#storage,
      content: "vztmpl",
    });
    const images: ImageView[] = [];
    for (const volume of volumes) {
      const view = await toView(volume);
      if (view !== undefined) images.push(view);
    }
    return images;
  }

  /** The image a reference (any form) or an image id names, if present. */
  async find(referenceOrId: string): Promise<ImageView | undefined> {
    const images = await this.list();
    if (referenceOrId.startsWith("sha256:") || /^[a-f0-9]{64}$/.test(referenceOrId)) {
      const id = referenceOrId.startsWith("sha256:") ? referenceOrId : `sha256:${referenceOrId}`;
      const byId = images.find((i) => i.id === id);
      if (byId !== undefined) return byId;
    }
    let parsed;
    try {
      parsed = parseImageReference(referenceOrId);
    } catch {
      return undefined;
    }
    const tag = repoTag(parsed);
    const digest = repoDigest(parsed);
    return images.find((i) =>
      (tag !== null && i.repoTags.includes(tag)) ||
      (digest !== null && i.repoDigests.includes(digest))
    );
  }

  /** Removes an image's template; absent is fine (the CRI says so). */
  async remove(referenceOrId: string): Promise<void> {
    const image = await this.find(referenceOrId);
    if (image === undefined) return;
    try {
      const upid = await this.#api.deleteVolume({ volid: image.volid, delay: 5 });
      if (upid !== null) await this.#api.waitForTask(upid);
    } catch (error) {
      if (!(error instanceof PveNotFoundError)) throw error;
    } finally {
      this.#forget();
    }
  }
}

async function toView(volume: StorageVolume): Promise<ImageView | undefined> {
  const file = volume.volid.slice(volume.volid.indexOf("/") + 1);
  const reference = referenceOfTemplate(file);
  if (reference === undefined) return undefined;
  let parsed;
  try {
    parsed = parseImageReference(reference);
  } catch {
    return undefined;
  }
  const tag = repoTag(parsed);
  const digest = repoDigest(parsed);
  return {
    id: `sha256:${await sha256Hex(canonicalReference(parsed))}`,
    repoTags: tag === null ? [] : [tag],
    repoDigests: digest === null ? [] : [digest],
    size: volume.size,
    volid: volume.volid,
  };
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
