/**
 * The images a node has: pulled from registries or imported from archives into the content
 * store, each an image stream (so replay shows where it came from), its archive a template in
 * Proxmox storage. Lookups by id (or a unique prefix of one), repo tag or repo digest, as
 * containerd resolves them. An image a container uses cannot be removed.
 */
import { imageUser, maxConfigBytes } from "../../adapters/oci/image_config.ts";
import type { ContentStore } from "../../adapters/oci/content_store.ts";
import { sha256Digest } from "../../adapters/oci/digest.ts";
import { type ArchiveImage, scanImageArchive } from "../../adapters/oci/image_archive.ts";
import {
  type ImageManifest,
  ociManifestBytes,
  type Platform,
  platformName,
} from "../../adapters/oci/manifest.ts";
import {
  canonicalReference,
  type ImageReference,
  parseImageReference,
  repoDigest,
  repository,
  repoTag,
} from "../../adapters/oci/reference.ts";
import type { RegistryClient, ResolvedImage } from "../../adapters/registry/mod.ts";
import {
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  RuntimeError,
} from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import type { EventOf } from "../../machines/events.ts";
import {
  imageActorOf,
  imageActors,
  type ImageNames,
  imageSettled,
  type ImageStart,
  removeImage,
  startImage,
  tagImage,
} from "../../machines/image_commands.ts";
import type { ImageContext } from "../../machines/image_context.ts";
import type { ImageSummary } from "../../machines/projections.ts";
import type { Registry } from "../../machines/registry.ts";
import type {
  CallInfo,
  ImageSpec,
  ImageView,
  ImportOptions,
  PullOptions,
  PullProgress,
} from "../api.ts";
import type { FetchSessions, FetchSource } from "./fetch_sessions.ts";

export interface ImageServiceOptions {
  registry: Registry;
  client: RegistryClient;
  content: ContentStore;
  sessions: FetchSessions;
  platform: Platform;
  log: Logger;
  /** `proxmox`: anonymous tag references are pulled by PVE's own oci-registry-pull. */
  pullMode?: "pve-cri" | "proxmox";
  /** Ids of the live containers made from an image. */
  containersUsing(imageId: string): string[];
  /** New stream ids. */
  newId(): string;
}

type ImageContent = Omit<EventOf<"ImagePullStarted">["data"], "reference" | "registry" | "digest">;

export class ImageService {
  readonly #options: ImageServiceOptions;
  readonly #registry: Registry;
  /** Creates between finding their image and recording it: a removal must wait for them. */
  readonly #held = new Map<string, number>();

  constructor(options: ImageServiceOptions) {
    this.#options = options;
    this.#registry = options.registry;
  }

  /** Pulls an image (a no-op download when it is present: only its names are added). */
  async pull(reference: string, call: CallInfo, options: PullOptions = {}): Promise<ImageView> {
    const ref = parseImageReference(reference, "image.image");
    const deadline = callSignal(call);
    try {
      return await this.#pull(ref, deadline.signal, call, options);
    } finally {
      deadline.done();
    }
  }

  async #pull(
    ref: ImageReference,
    signal: AbortSignal,
    call: CallInfo,
    options: PullOptions,
  ): Promise<ImageView> {
    const repo = this.#options.client.repository(ref, options.auth);
    const resolved = await repo.resolve(signal);
    const manifest = ociManifestBytes(resolved.manifest);
    const content = this.#content(resolved.manifest, manifest, resolved.config.file);
    const names: ImageNames = {
      repoTags: ref.tag === null ? [] : [repoTag(ref)!],
      repoDigests: [`${repository(ref)}@${resolved.digest}`],
    };
    options.onProgress?.({ kind: "resolved", imageId: content.imageId, layers: content.layers });
    // PVE's own pull takes no credentials and no digests (NOTES.md §7): those are pve-cri's.
    const byProxmox = this.#options.pullMode === "proxmox" && ref.digest === null &&
      options.auth === undefined;
    const start: ImageStart = {
      type: "ImagePullStarted",
      data: {
        reference: canonicalReference(ref),
        registry: resolved.host,
        digest: resolved.digest,
        ...(byProxmox ? { via: "proxmox" as const } : {}),
        ...content,
      },
    };
    try {
      return await this.#acquire(start, { kind: "registry", repository: repo, resolved }, {
        manifest,
        names,
        call: { ...call, signal },
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      });
    } catch (error) {
      throw deadlineNamed(
        error,
        signal,
        `pulling ${canonicalReference(ref)} from ${resolved.host}`,
      );
    }
  }

  /** Imports an image archive on the node (OCI layout or docker save, plain or gzip). */
  async importArchive(
    path: string,
    call: CallInfo,
    options: ImportOptions = {},
  ): Promise<ImageView> {
    const deadline = callSignal(call);
    try {
      return await this.#import(path, deadline.signal, call, options);
    } finally {
      deadline.done();
    }
  }

  async #import(
    path: string,
    signal: AbortSignal,
    call: CallInfo,
    options: ImportOptions,
  ): Promise<ImageView> {
    const image: ArchiveImage = await scanImageArchive(path, {
      ...(options.name === undefined ? {} : { name: options.name }),
      platform: this.#options.platform,
    });
    const manifest = ociManifestBytes(image.manifest);
    const content = this.#content(image.manifest, manifest, image.config.file);
    options.onProgress?.({ kind: "resolved", imageId: content.imageId, layers: content.layers });
    const start: ImageStart = {
      type: "ImageImportStarted",
      data: { archive: path, format: image.format, ...content },
    };
    try {
      return await this.#acquire(start, { kind: "archive", path, image }, {
        manifest,
        names: { repoTags: image.repoTags, repoDigests: [] },
        call: { ...call, signal },
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      });
    } catch (error) {
      throw deadlineNamed(error, signal, `importing "${path}"`);
    }
  }

  /** Images that are present. */
  list(): ImageView[] {
    return this.#present().map(viewOf);
  }

  /**
   * The present image a reference (any form) or an id (or unique id prefix) names. A malformed
   * reference is InvalidArgument naming `field`.
   */
  find(referenceOrId: string, field = "image.image"): ImageView | undefined {
    const summary = this.#lookup(referenceOrId, field);
    return summary === undefined ? undefined : viewOf(summary);
  }

  /** The image, or NotFound saying it must be pulled first. */
  require(referenceOrId: string, field = "image.image"): ImageView {
    const image = this.find(referenceOrId, field);
    if (image === undefined) {
      throw new NotFoundError(`Image "${referenceOrId}" is not present: pull it first`, {
        details: { image: referenceOrId },
      });
    }
    return image;
  }

  /** Keeps an image from being removed until the returned release is called. */
  hold(imageId: string): () => void {
    this.#held.set(imageId, (this.#held.get(imageId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#held.get(imageId) ?? 1) - 1;
      if (left === 0) this.#held.delete(imageId);
      else this.#held.set(imageId, left);
    };
  }

  /**
   * What `crictl inspecti` shows: the image config as stored (containerd's `imageSpec`), the
   * template, where the image came from.
   */
  async info(imageId: string): Promise<Record<string, unknown>> {
    const actor = imageActorOf(this.#registry, imageId);
    if (actor === undefined) return {};
    const context = actor.state.context as ImageContext;
    const configBytes = await this.#options.content.read(imageId, maxConfigBytes).catch(() =>
      undefined
    );
    return {
      imageSpec: configBytes === undefined
        ? null
        : JSON.parse(new TextDecoder().decode(configBytes)),
      template: context.volid,
      manifestDigest: context.manifestDigest,
      platform: context.platform,
      source: context.source,
      layers: context.layers,
    };
  }

  /** The image config's parts a container gets, by image id. */
  specOf(imageId: string): ImageSpec | undefined {
    const summary = imageActorOf(this.#registry, imageId)?.summary as ImageSummary | undefined;
    return summary?.config ?? undefined;
  }

  /**
   * Removes an image by id, tag or digest: every name of it, its template, and the blobs no
   * other image shares. Absent is fine (the CRI says so); in use is FailedPrecondition.
   */
  async remove(referenceOrId: string, call: CallInfo): Promise<void> {
    const image = this.find(referenceOrId);
    if (image === undefined) return;
    const users = this.#options.containersUsing(image.id);
    if (users.length > 0 || this.#held.has(image.id)) {
      const named = users.length > 0 ? `container "${users[0]}"` : "a container being created";
      throw new FailedPreconditionError(
        `Image ${image.id} is used by ${named}${
          users.length > 1 ? ` and ${users.length - 1} more` : ""
        }: remove the container first`,
        { details: { image: image.id, ...(users.length > 0 ? { container_id: users[0] } : {}) } },
      );
    }
    const stream = imageActorOf(this.#registry, image.id)?.stream;
    if (stream === undefined) return;
    const state = await removeImage(this.#registry, stream, {
      meta: call.meta,
      ...(call.signal === undefined ? {} : { signal: call.signal }),
    });
    if (state?.value === "present" && state.context.lastError !== null) {
      const error = state.context.lastError;
      throw new RuntimeError(
        (error.code as RuntimeError["code"] | undefined) ?? "Internal",
        `Removing image ${image.id} failed: ${error.error}`,
        { details: { image: image.id } },
      );
    }
  }

  /** What the content store holds on disk. */
  fsInfo(): { mountpoint: string; usedBytes: number; inodesUsed: number } {
    const usage = this.#options.content.usage();
    return {
      mountpoint: this.#options.content.dir,
      usedBytes: usage.bytes,
      inodesUsed: usage.inodes,
    };
  }

  #content(
    manifest: ImageManifest,
    ociManifest: Uint8Array,
    config: ResolvedImage["config"]["file"],
  ): ImageContent {
    const configBlob = { digest: manifest.config.digest, size: manifest.config.size };
    const layers = manifest.layers.map((l) => ({
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
    }));
    return {
      imageId: configBlob.digest,
      manifestDigest: sha256Digest(ociManifest),
      config: configBlob,
      layers,
      size: configBlob.size + layers.reduce((sum, l) => sum + l.size, 0),
      platform: platformName({
        os: config.os || "linux",
        architecture: config.architecture || this.#options.platform.architecture,
      }),
      imageConfig: config.config,
    };
  }

  /**
   * Gets the image present: joins the live stream of the same image (one download for any
   * number of callers), or records a new one and waits for its fetch; then names it.
   */
  async #acquire(
    start: ImageStart,
    source: FetchSource,
    options: {
      manifest: Uint8Array;
      names: ImageNames;
      call: CallInfo & { signal: AbortSignal };
      onProgress?: (progress: PullProgress) => void;
    },
  ): Promise<ImageView> {
    const { sessions } = this.#options;
    const { call } = options;
    const command = { meta: call.meta, signal: call.signal };
    for (let attempt = 0;; attempt++) {
      let stream = imageActorOf(this.#registry, start.data.imageId)?.stream;
      if (stream === undefined) {
        const id = this.#options.newId();
        sessions.open(id, source, options.manifest);
        let started;
        try {
          started = await startImage(this.#registry, id, start, { meta: call.meta });
        } catch (error) {
          sessions.close(id);
          throw error;
        }
        if (!started.created) sessions.close(id);
        stream = started.stream;
      }
      const leave = sessions.join(stream, call.signal, options.onProgress);
      let state;
      try {
        state = await imageSettled(this.#registry, stream, call.signal);
      } finally {
        leave();
      }
      if (state?.value === "present") {
        sessions.close(stream);
        await tagImage(this.#registry, stream, options.names, command);
        return viewOf(this.#registry.get(stream)!.summary as ImageSummary);
      }
      if (state?.value === "failed") {
        sessions.close(stream);
        const error = state.context.lastError;
        throw new RuntimeError(
          (error?.code as RuntimeError["code"] | undefined) ?? "Internal",
          error?.error ?? `Fetching image ${start.data.imageId} failed`,
          { details: { image: start.data.imageId } },
        );
      }
      // Removed between finding it and waiting on it: start over, a few times at most.
      if (attempt >= 2) {
        throw new FailedPreconditionError(`Image ${start.data.imageId} kept being removed`);
      }
    }
  }

  #present(): ImageSummary[] {
    return imageActors(this.#registry)
      .filter((a) => a.value === "present")
      .map((a) => a.summary as ImageSummary);
  }

  #lookup(referenceOrId: string, field: string): ImageSummary | undefined {
    const present = this.#present();
    const id = /^(?:sha256:)?([a-f0-9]{12,64})$/.exec(referenceOrId)?.[1];
    if (id !== undefined) {
      const matches = present.filter((s) => s.imageId.slice(7).startsWith(id));
      if (matches.length === 1) return matches[0];
      if (id.length === 64 || referenceOrId.startsWith("sha256:")) return undefined;
    }
    const ref: ImageReference = parseImageReference(referenceOrId, field);
    const digest = repoDigest(ref);
    if (digest !== null) return present.find((s) => s.repoDigests.includes(digest));
    const tag = repoTag(ref);
    return present.find((s) => tag !== null && s.repoTags.includes(tag));
  }
}

function viewOf(summary: ImageSummary): ImageView {
  const user = imageUser(summary.config?.user ?? "");
  return {
    id: summary.imageId,
    repoTags: summary.repoTags,
    repoDigests: summary.repoDigests,
    size: summary.size,
    volid: summary.volid ?? "",
    uid: user.uid === undefined ? null : user.uid.toString(),
    username: user.username ?? "",
    spec: summary.config,
    createdAt: summary.createdAt,
  };
}

/**
 * The caller's signal, aborting a little before the call's deadline: a pull that cannot
 * finish in time then fails with a message naming the registry, rather than the bare
 * "Deadline exceeded" the server sends when the deadline itself passes.
 */
function callSignal(call: CallInfo): { signal: AbortSignal; done(): void } {
  const signals = call.signal === undefined ? [] : [call.signal];
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (call.deadline !== undefined && Number.isFinite(call.deadline)) {
    const left = call.deadline - Date.now();
    const margin = Math.min(2000, Math.max(100, left * 0.05));
    const controller = new AbortController();
    timer = setTimeout(
      () => controller.abort(new DeadlineExceededError("The call's deadline is near")),
      Math.max(0, left - margin),
    );
    signals.push(controller.signal);
  }
  return {
    signal: signals.length === 0 ? new AbortController().signal : AbortSignal.any(signals),
    done: () => clearTimeout(timer),
  };
}

/** A deadline error that says what was being done and where. */
function deadlineNamed(error: unknown, signal: AbortSignal, what: string): unknown {
  const reason = signal.aborted ? signal.reason : undefined;
  if (
    reason instanceof DeadlineExceededError &&
    (error === reason || error instanceof RuntimeError && error.code === "Aborted")
  ) {
    return new DeadlineExceededError(
      `${what}: the call's deadline came before the image was stored`,
    );
  }
  return error;
}
