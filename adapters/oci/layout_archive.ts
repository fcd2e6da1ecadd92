/**
 * An image as an OCI image layout archive (`oci-layout`, `index.json`, `blobs/sha256/…`), the
 * form PVE 9.1 creates CTs from. Streamed from the content store with its length known up
 * front (an upload states it first): the same length and entries for the same image on every
 * node, owned by root, dated 0. Blobs still coming in are followed as they arrive, so an
 * archive can be sent while its image is being pulled; they go in the order they are ready.
 */
import { tarHeader, tarPadding, tarTrailer } from "../../lib/tar.ts";
import type { BlobDescriptor, ContentStore } from "./content_store.ts";
import { digestHex } from "./digest.ts";
import { mediaTypes } from "./media_types.ts";

export interface LayoutImage {
  /** The OCI manifest (as stored in the content store). */
  manifest: BlobDescriptor;
  config: BlobDescriptor;
  layers: readonly BlobDescriptor[];
}

export interface LayoutArchive {
  length: number;
  /** The archive's bytes; each call reads the blobs afresh. */
  chunks(signal?: AbortSignal): AsyncIterable<Uint8Array>;
}

const encoder = new TextEncoder();

export function layoutArchive(store: ContentStore, image: LayoutImage): LayoutArchive {
  const index = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: mediaTypes.ociIndex,
    manifests: [{
      mediaType: mediaTypes.ociManifest,
      digest: image.manifest.digest,
      size: image.manifest.size,
    }],
  }));
  const layout = encoder.encode('{"imageLayoutVersion":"1.0.0"}');
  const seen = new Set<string>();
  const blobs = [image.manifest, image.config, ...image.layers].filter((b) => {
    if (seen.has(b.digest)) return false;
    seen.add(b.digest);
    return true;
  });
  const entry = (blob: BlobDescriptor) => ({
    name: `blobs/sha256/${digestHex(blob.digest)}`,
    type: "file" as const,
    size: blob.size,
  });
  const fixed: { header: Uint8Array; data?: Uint8Array }[] = [
    { header: tarHeader({ name: "oci-layout", type: "file", size: layout.length }), data: layout },
    { header: tarHeader({ name: "index.json", type: "file", size: index.length }), data: index },
    { header: tarHeader({ name: "blobs/", type: "directory" }) },
    { header: tarHeader({ name: "blobs/sha256/", type: "directory" }) },
  ];
  const headers = new Map(blobs.map((b) => [b.digest, tarHeader(entry(b))]));
  let length = 1024;
  for (const part of fixed) {
    const size = part.data?.length ?? 0;
    length += part.header.length + size + tarPadding(size).length;
  }
  for (const blob of blobs) {
    length += headers.get(blob.digest)!.length + blob.size + tarPadding(blob.size).length;
  }
  return {
    length,
    async *chunks(signal) {
      for (const part of fixed) {
        yield part.header;
        if (part.data !== undefined) {
          yield part.data;
          const padding = tarPadding(part.data.length);
          if (padding.length > 0) yield padding;
        }
      }
      // Blobs in the order they are ready (stored first, then the one furthest along): the
      // archive keeps up with a pull whose layers arrive in parallel, in any order.
      const left = [...blobs];
      while (left.length > 0) {
        signal?.throwIfAborted();
        const next = readiest(store, left);
        if (next === undefined) {
          await store.changed(signal);
          continue;
        }
        const blob = left.splice(next, 1)[0]!;
        yield headers.get(blob.digest)!;
        yield* store.stream(blob, signal);
        const padding = tarPadding(blob.size);
        if (padding.length > 0) yield padding;
      }
      yield tarTrailer();
    },
  };
}

/** The blob to send next: the first stored one, else the one furthest along; none begun: none. */
function readiest(store: ContentStore, blobs: readonly BlobDescriptor[]): number | undefined {
  let best: number | undefined;
  let bestWritten = -1;
  for (const [i, blob] of blobs.entries()) {
    const progress = store.progressOf(blob);
    if (progress === "stored") return i;
    if (progress !== undefined && progress > bestWritten) {
      best = i;
      bestWritten = progress;
    }
  }
  return best;
}
