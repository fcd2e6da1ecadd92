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
  /** A listing being read. */
  #reading: { at: number; images: Promise<ImageView[]> } | undefined;
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
    this.#reading = undefined;
    this.#envs.clear();
  }

  /**
   * The images, from a listing at most `cacheMs` old when one can be had without waiting:
   * an older listing is answered at once while a fresh one is read in the background, so a
   * CreateContainer never waits on the storage for an image it already found.
   */
  list(): Promise<ImageView[]> {
    const cached = this.#cached;
    if (cached === undefined) return this.#refresh().images;
    if (this.#isStale(cached)) this.#refresh();
    return cached.images;
  }

  #isStale(cached: { at: number }): boolean {
    return Date.now() - cached.at > this.#ttlMs;
  }

  /** Reads the storage; the listing replaces the cached one once it arrives. */
  #refresh(): { at: number; images: Promise<ImageView[]> } {
    if (this.#reading !== undefined) return this.#reading;
    const reading = { at: Date.now(), images: this.#read() };
    this.#reading = reading;
    if (this.#cached === undefined) this.#cached = reading;
    reading.images.then(
      () => {
        if (this.#reading === reading) this.#cached = reading;
      },
      () => {
        // A failed read leaves the last good listing, if any; the next call tries again.
        if (this.#cached === reading) this.#cached = undefined;
      },
    ).finally(() => {
      if (this.#reading === reading) this.#reading = undefined;
    });
    return reading;
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

  /**
   * The image a reference (any form) or an image id names, if present. A miss in a listing
   * past `cacheMs` asks the storage again: the image may have been pulled since.
   */
  async find(referenceOrId: string): Promise<ImageView | undefined> {
    const cached = this.#cached;
    const found = search(await this.list(), referenceOrId);
    if (found !== undefined || cached === undefined || !this.#isStale(cached)) return found;
    return search(await this.#refresh().images, referenceOrId);
  }

  /** The image, or NotFound saying it must be pulled first. */
  async require(referenceOrId: string): Promise<ImageView> {
    const image = await this.find(referenceOrId);
    if (image === undefined) {
      throw new NotFoundError(`Image "${referenceOrId}" is not present: pull it first`, {
        details: { image: referenceOrId },
      });
    }
    return image;
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

function search(images: ImageView[], referenceOrId: string): ImageView | undefined {
  if (referenceOrId.startsWith("sha256:") || /^[a-f0-9]{64}$/.test(referenceOrId)) {
    const id = referenceOrId.startsWith("sha256:") ? referenceOrId : `sha256:${referenceOrId}`;
    const byId = images.find((i) => i.id === id);
    if (byId !== undefined) return byId;
  }
  const names = namesOf(referenceOrId);
  if (names === undefined) return undefined;
  const { tag, digest } = names;
  return images.find((i) =>
    (tag !== null && i.repoTags.includes(tag)) ||
    (digest !== null && i.repoDigests.includes(digest))
  );
}

/** A reference's canonical form, repo:tag and repo@digest; undefined when it is malformed. */
function namesOf(
  reference: string,
): { canonical: string; tag: string | null; digest: string | null } | undefined {
  let parsed;
  try {
    parsed = parseImageReference(reference);
  } catch {
    return undefined;
  }
  return {
    canonical: canonicalReference(parsed),
    tag: repoTag(parsed),
    digest: repoDigest(parsed),
  };
}

async function toView(volume: StorageVolume): Promise<ImageView | undefined> {
  const file = volume.volid.slice(volume.volid.indexOf("/") + 1);
  const reference = referenceOfTemplate(file);
  if (reference === undefined) return undefined;
  const names = namesOf(reference);
  if (names === undefined) return undefined;
  const { tag, digest } = names;
  return {
    id: `sha256:${await sha256Hex(names.canonical)}`,
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
