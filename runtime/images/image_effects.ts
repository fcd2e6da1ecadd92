/**
 * The image machine's effects bound to the content store, the registry client and Proxmox:
 * fetch the content (from the registry or an archive, each blob verified as it streams),
 * store the template, remove the image. A fetch needs its session (credentials, the archive)
 * and so cannot resume after a restart: it is given up, and the next pull starts over with
 * whatever blobs were already stored whole.
 */
import type { ContentStore } from "../../adapters/oci/content_store.ts";
import { sha256Digest } from "../../adapters/oci/digest.ts";
import { copyArchiveLayers } from "../../adapters/oci/image_archive.ts";
import { pullLayers } from "../../adapters/registry/mod.ts";
import { AbortedError, FailedPreconditionError } from "../../lib/errors.ts";
import type { AdapterEffectHandlers } from "../../machines/effects.ts";
import { blobsOf, type ImageContext, pulledByProxmox } from "../../machines/image_context.ts";
import type { FetchSession, FetchSessions } from "./fetch_sessions.ts";
import type { TemplateStore } from "./template_store.ts";

export interface ImageEffectDeps {
  content: ContentStore;
  templates: TemplateStore;
  sessions: FetchSessions;
  /** Blobs of every live image but `stream`: what a removal must keep. */
  blobsInUse(stream: string): Set<string>;
  /** Layers fetched at once (containerd's default is 3). */
  parallelLayers?: number;
}

export function imageEffects(deps: ImageEffectDeps): AdapterEffectHandlers["image"] {
  const { content, templates, sessions } = deps;
  const parallel = deps.parallelLayers ?? 3;

  return {
    async fetchContent({ stream, context, signal }) {
      if (context.contentStored) return; // resumed after it finished: the template step remains
      const session = sessions.get(stream);
      if (session === undefined) {
        throw new FailedPreconditionError(
          "The fetch was interrupted (pve-cri restarted before it finished): pull or import again",
        );
      }
      const cancel = AbortSignal.any([signal, session.signal]);
      try {
        await fetchBlobs(content, context, session, cancel, parallel);
      } catch (error) {
        throw cancel.aborted && !signal.aborted
          ? new AbortedError("The pull was cancelled: every caller waiting for it gave up", {
            cause: error,
          })
          : error;
      }
      return { type: "ImageContentStored", data: {} };
    },

    async storeTemplate({ stream, context, signal }) {
      if (context.volid !== null) return; // resumed after it finished
      const session = sessions.get(stream);
      const cancel = session === undefined ? signal : AbortSignal.any([signal, session.signal]);
      if (pulledByProxmox(context) && context.source?.kind === "registry") {
        const pulled = await templates.pullByProxmox(
          context.source.reference,
          context.manifestDigest,
          { signal: cancel },
        );
        return { type: "ImageTemplateStored", data: pulled };
      }
      const stored = await templates.store(
        {
          manifest: {
            digest: context.manifestDigest,
            size: manifestSizeOf(content, context, session),
          },
          config: context.configBlob!,
          layers: context.layers,
        },
        {
          signal: cancel,
          onProgress: (done, total) => session?.progress({ kind: "template", done, total }),
        },
      );
      return { type: "ImageTemplateStored", data: stored };
    },

    async removeImage({ stream, context }) {
      if (context.volid !== null) await templates.remove(context.volid);
      const keep = deps.blobsInUse(stream);
      for (const digest of blobsOf(context)) {
        if (!keep.has(digest)) await content.remove(digest);
      }
      return { type: "ImageRemoved", data: {} };
    },
  };
}

/**
 * The size of the image's OCI manifest: the session has its bytes; after a restart the
 * content store has them (the content was stored, or the template step would not run).
 */
function manifestSizeOf(
  content: ContentStore,
  context: ImageContext,
  session: FetchSession | undefined,
): number {
  if (session !== undefined) return session.manifest.length;
  return Deno.statSync(content.path(context.manifestDigest)).size;
}

/** Stores the image's manifest, config and layers, each checked against its digest. */
async function fetchBlobs(
  content: ContentStore,
  context: ImageContext,
  session: FetchSession,
  signal: AbortSignal,
  parallel: number,
): Promise<void> {
  const manifest = session.manifest;
  await content.put(
    { digest: sha256Digest(manifest), size: manifest.length },
    manifest,
    "the image's OCI manifest",
  );
  const source = session.source;
  const configBytes = source.kind === "registry"
    ? source.resolved.config.bytes
    : source.image.config.bytes;
  await content.put(context.configBlob!, configBytes, "the image config");
  if (pulledByProxmox(context)) return; // PVE fetches the layers into its own storage
  const onProgress = (digest: string) => (done: number, total: number) =>
    session.progress({ kind: "layer", digest, done, total });
  if (source.kind === "archive") {
    await copyArchiveLayers(source.path, source.image, content, {
      signal,
      onProgress: (digest, done, total) => onProgress(digest)(done, total),
    });
    return;
  }
  await pullLayers(content, source.repository, context.layers, {
    signal,
    parallel,
    onProgress: (digest, done, total) => onProgress(digest)(done, total),
  });
}
