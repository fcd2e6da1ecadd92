/**
 * An image as an OCI image layout archive (`oci-layout`, `index.json`, `blobs/sha256/…`), the
 * form PVE 9.1 creates CTs from. Streamed from the content store with its length known up
 * front (an upload states it first), and byte for byte the same for the same image on every
 * node: entries in a fixed order, owned by root, dated 0. Blobs still coming in are followed
 * as they arrive, so an archive can be sent while its image is being pulled.
 */
import { tarHeader, type TarHeaderInput, tarPadding, tarTrailer } from "../../lib/tar.ts";
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
  type Part = { header: TarHeaderInput; data?: Uint8Array; blob?: BlobDescriptor };
  const parts: Part[] = [
    { header: { name: "oci-layout", type: "file", size: layout.length }, data: layout },
    { header: { name: "index.json", type: "file", size: index.length }, data: index },
    { header: { name: "blobs/", type: "directory" } },
    { header: { name: "blobs/sha256/", type: "directory" } },
    ...blobs.map((blob) => ({
      header: {
        name: `blobs/sha256/${digestHex(blob.digest)}`,
        type: "file" as const,
        size: blob.size,
      },
      blob,
    })),
  ];
  const headers = parts.map((p) => tarHeader(p.header));
  let length = 1024;
  for (const [i, part] of parts.entries()) {
    const size = part.header.size ?? 0;
    length += headers[i]!.length + size + tarPadding(size).length;
  }
  return {
    length,
    async *chunks(signal) {
      for (const [i, part] of parts.entries()) {
        signal?.throwIfAborted();
        yield headers[i]!;
        const size = part.header.size ?? 0;
        if (part.data !== undefined) yield part.data;
        if (part.blob !== undefined) yield* store.stream(part.blob, signal);
        const padding = tarPadding(size);
        if (padding.length > 0) yield padding;
      }
      yield tarTrailer();
    },
  };
}
