/**
 * Image archives on disk, as `ctr images import` takes them: an OCI image layout in a tar
 * (what skopeo's `oci-archive:` and docker 25+ write) or a `docker save` archive
 * (`manifest.json`, `<id>.json`, `<dir>/layer.tar`), plain or gzip-compressed. Read in two
 * passes: a scan that finds the image (small documents only; layers are skipped), and a copy
 * that streams its blobs into the content store, each checked against its digest.
 */
import { DataLossError, InvalidArgumentError, NotFoundError } from "../../lib/errors.ts";
import { fileSource, streamSource, TarReader } from "../../lib/tar.ts";
import type { ContentStore, Progress } from "./content_store.ts";
import { digestHex, isDigest, sha256Digest } from "./digest.ts";
import { type ImageConfigFile, parseImageConfig } from "./image_config.ts";
import {
  choosePlatform,
  type Descriptor,
  type ImageManifest,
  parseJsonObject,
  parseManifest,
  type Platform,
} from "./manifest.ts";
import { isIndexType, mediaTypes } from "./media_types.ts";
import {
  canonicalReference,
  type ImageReference,
  parseImageReference,
  repoTag,
} from "./reference.ts";

export interface ArchiveImage {
  format: "oci" | "docker";
  manifest: ImageManifest;
  config: { descriptor: Descriptor; bytes: Uint8Array; file: ImageConfigFile };
  /** Repo tags the archive names the image by (docker's RepoTags, OCI's image name annotation). */
  repoTags: string[];
  /** Where each layer is in the archive, by digest. */
  layerEntries: Map<string, string>;
}

/** Small documents the scan keeps in memory while it reads (manifests, configs, indexes). */
const smallEntry = 1024 * 1024;
const smallTotal = 64 * 1024 * 1024;
const maxDocument = 8 * 1024 * 1024;

interface Scan {
  /** Entry sizes by name. */
  sizes: Map<string, number>;
  /** Data of small entries by name. */
  small: Map<string, Uint8Array>;
}

/** Opens an archive as tar, through gunzip when it is compressed. */
async function openArchive(path: string): Promise<{ reader: TarReader; close(): void }> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (error) {
    throw new NotFoundError(
      `Image archive "${path}" cannot be opened: ${(error as Error).message}`,
    );
  }
  const magic = new Uint8Array(2);
  const n = await file.read(magic);
  await file.seek(0, Deno.SeekMode.Start);
  if (n === 2 && magic[0] === 0x1f && magic[1] === 0x8b) {
    const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
    return {
      reader: new TarReader(streamSource(stream)),
      close: () => stream.cancel().catch(() => {}),
    };
  }
  return { reader: new TarReader(fileSource(file)), close: () => file.close() };
}

/** Reads what the archive holds: names, sizes, and the small documents. */
async function scan(path: string): Promise<Scan> {
  const { reader, close } = await openArchive(path);
  const sizes = new Map<string, number>();
  const small = new Map<string, Uint8Array>();
  let kept = 0;
  try {
    for (let entry = await reader.next(); entry !== undefined; entry = await reader.next()) {
      if (entry.type !== "file") continue;
      sizes.set(entry.name, entry.size);
      if (entry.size <= smallEntry && kept + entry.size <= smallTotal) {
        small.set(entry.name, await reader.readData(smallEntry));
        kept += entry.size;
      }
    }
  } catch (error) {
    if (error instanceof Error && error.name === "TarFormatError") {
      throw new InvalidArgumentError(`"${path}" is not an image archive: ${error.message}`);
    }
    throw error;
  } finally {
    close();
  }
  return { sizes, small };
}

/**
 * The image in an archive: the one named `name` when the archive holds several, else the
 * only one (or, in an OCI index, this node's platform).
 */
export async function scanImageArchive(
  path: string,
  options: { name?: string; platform: Platform },
): Promise<ArchiveImage> {
  const found = await scan(path);
  const wanted = options.name === undefined ? undefined : parseImageReference(options.name, "name");
  if (found.small.has("index.json")) return await ociImage(path, found, wanted, options.platform);
  if (found.small.has("manifest.json")) return dockerImage(path, found, wanted);
  throw new InvalidArgumentError(
    `"${path}" is neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)`,
  );
}

async function ociImage(
  path: string,
  found: Scan,
  wanted: ImageReference | undefined,
  platform: Platform,
): Promise<ArchiveImage> {
  const where = `image archive "${path}"`;
  const doc = (name: string, digest?: string) => document(path, found, name, digest);
  const index = parseManifest(await doc("index.json"), mediaTypes.ociIndex, where);
  if (index.kind !== "index") throw new DataLossError(`${where}: index.json is not an image index`);
  const named = (d: Descriptor & { annotations?: Record<string, string> }) => {
    const names = [
      d.annotations?.["io.containerd.image.name"],
      d.annotations?.["org.opencontainers.image.ref.name"],
    ].filter((n): n is string => n !== undefined);
    return names;
  };
  const rawIndex = parseJsonObject(await doc("index.json"), where, "index.json");
  const descriptors = index.index.manifests.map((d, i) => ({
    ...d,
    annotations: (rawIndex.manifests?.[i]?.annotations ?? {}) as Record<string, string>,
  }));
  const byName = wanted === undefined
    ? undefined
    : descriptors.find((d) =>
      named(d).some((n) => n === wanted.tag || safeCanonical(n) === canonicalReference(wanted))
    );
  if (descriptors.length === 0) throw new DataLossError(`${where}: index.json lists no image`);
  const chosen = byName ??
    (descriptors.length === 1
      ? descriptors[0]!
      : { ...choosePlatform(index.index, platform, where), annotations: {} });
  const repoTags = named(chosen).map(safeTag).filter((t): t is string => t !== undefined);
  let descriptor: Descriptor = chosen;
  for (let depth = 0; isIndexType(descriptor.mediaType); depth++) {
    if (depth > 2) throw new DataLossError(`${where}: image indexes nest too deeply`);
    const nested = parseManifest(
      await doc(blobName(descriptor.digest), descriptor.digest),
      undefined,
      where,
    );
    if (nested.kind !== "index") {
      throw new DataLossError(`${where}: ${descriptor.digest} is not an index`);
    }
    descriptor = choosePlatform(nested.index, platform, where);
  }
  const parsed = parseManifest(
    await doc(blobName(descriptor.digest), descriptor.digest),
    descriptor.mediaType,
    where,
  );
  if (parsed.kind !== "manifest") {
    throw new DataLossError(`${where}: ${descriptor.digest} is not a manifest`);
  }
  const manifest = parsed.manifest;
  const configBytes = await doc(blobName(manifest.config.digest), manifest.config.digest);
  const file = parseImageConfig(configBytes, `${where}: config`);
  checkLayers(where, manifest, file);
  const layerEntries = new Map<string, string>();
  for (const layer of manifest.layers) {
    const name = blobName(layer.digest);
    if (found.sizes.get(name) !== layer.size) {
      throw new DataLossError(`${where}: layer ${layer.digest} is missing or has the wrong size`);
    }
    layerEntries.set(layer.digest, name);
  }
  return {
    format: "oci",
    manifest,
    config: { descriptor: manifest.config, bytes: configBytes, file },
    repoTags: wanted === undefined ? repoTags : [repoTag(wanted) ?? ""].filter(Boolean),
    layerEntries,
  };
}

function dockerImage(path: string, found: Scan, wanted: ImageReference | undefined): ArchiveImage {
  const where = `image archive "${path}"`;
  const manifestBytes = found.small.get("manifest.json")!;
  let entries: unknown;
  try {
    entries = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch {
    throw new DataLossError(`${where}: manifest.json is not JSON`);
  }
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new DataLossError(`${where}: manifest.json lists no image`);
  }
  type Entry = { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
  const list = entries as Entry[];
  const tagsOf = (e: Entry) =>
    Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === "string") : [];
  const chosen = wanted === undefined
    ? list[0]!
    : list.find((e) => tagsOf(e).some((t) => safeCanonical(t) === canonicalReference(wanted))) ??
      list[0]!;
  if (typeof chosen.Config !== "string" || !Array.isArray(chosen.Layers)) {
    throw new DataLossError(`${where}: manifest.json entry lacks Config or Layers`);
  }
  const configBytes = found.small.get(chosen.Config);
  if (configBytes === undefined) {
    throw new DataLossError(`${where}: config "${chosen.Config}" is missing`);
  }
  const configDigest = sha256Digest(configBytes);
  const file = parseImageConfig(configBytes, `${where}: config`);
  if (file.diffIds.length !== chosen.Layers.length) {
    throw new DataLossError(
      `${where}: ${chosen.Layers.length} layers listed, the config has ${file.diffIds.length}`,
    );
  }
  const layerEntries = new Map<string, string>();
  // docker writes layers uncompressed: each one's digest is its diff id.
  const layers = chosen.Layers.map((name, i) => {
    const size = typeof name === "string" ? found.sizes.get(name) : undefined;
    if (size === undefined) throw new DataLossError(`${where}: layer "${String(name)}" is missing`);
    const digest = file.diffIds[i]!;
    layerEntries.set(digest, name as string);
    return { mediaType: mediaTypes.ociLayer, digest, size, compression: "none" as const };
  });
  const config = {
    mediaType: mediaTypes.ociConfig,
    digest: configDigest,
    size: configBytes.length,
  };
  const repoTags = wanted === undefined
    ? tagsOf(chosen).map(safeTag).filter((t): t is string => t !== undefined)
    : [repoTag(wanted) ?? ""].filter(Boolean);
  return {
    format: "docker",
    manifest: { mediaType: mediaTypes.ociManifest, config, layers },
    config: { descriptor: config, bytes: configBytes, file },
    repoTags,
    layerEntries,
  };
}

/**
 * Streams the image's layers out of the archive into the content store, each checked against
 * its digest as it is written (layers already stored are skipped).
 */
export async function copyArchiveLayers(
  path: string,
  image: ArchiveImage,
  store: ContentStore,
  options: {
    signal?: AbortSignal;
    onProgress?: (digest: string, ...p: Parameters<Progress>) => void;
  },
): Promise<void> {
  const byEntry = new Map<string, Descriptor>();
  for (const layer of image.manifest.layers) {
    byEntry.set(image.layerEntries.get(layer.digest)!, layer);
  }
  const { reader, close } = await openArchive(path);
  const stored = new Set<string>();
  try {
    for (let entry = await reader.next(); entry !== undefined; entry = await reader.next()) {
      options.signal?.throwIfAborted();
      const layer = byEntry.get(entry.name);
      if (layer === undefined || entry.type !== "file" || stored.has(layer.digest)) continue;
      await store.ingest(layer, () => reader.data(), {
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        onProgress: (done, total) => options.onProgress?.(layer.digest, done, total),
        where: `layer ${layer.digest} of "${path}"`,
      });
      stored.add(layer.digest);
    }
  } catch (error) {
    // Reported once a cancelled layer's partial file is gone.
    await store.settled(image.manifest.layers.map((l) => l.digest));
    throw error;
  } finally {
    close();
  }
  for (const layer of image.manifest.layers) {
    if (!stored.has(layer.digest) && !store.has(layer.digest, layer.size)) {
      throw new DataLossError(`Image archive "${path}" lacks layer ${layer.digest}`);
    }
  }
}

/** A document of the archive, from the scan's memory (re-read when it was too large). */
async function document(
  path: string,
  found: Scan,
  name: string,
  digest?: string,
): Promise<Uint8Array> {
  let data = found.small.get(name);
  if (data === undefined) {
    if (!found.sizes.has(name)) {
      throw new DataLossError(`Image archive "${path}" lacks ${name}`);
    }
    if (found.sizes.get(name)! > maxDocument) {
      throw new DataLossError(
        `Image archive "${path}": ${name} is larger than ${maxDocument} bytes`,
      );
    }
    const { reader, close } = await openArchive(path);
    try {
      for (let e = await reader.next(); e !== undefined; e = await reader.next()) {
        if (e.type === "file" && e.name === name) {
          data = await reader.readData(maxDocument);
          break;
        }
      }
    } finally {
      close();
    }
    if (data === undefined) throw new DataLossError(`Image archive "${path}" lacks ${name}`);
  }
  if (digest !== undefined && sha256Digest(data) !== digest) {
    throw new DataLossError(`Image archive "${path}": ${name} does not match its digest`);
  }
  return data;
}

function checkLayers(where: string, manifest: ImageManifest, file: ImageConfigFile): void {
  if (file.diffIds.length !== manifest.layers.length) {
    throw new DataLossError(
      `${where}: the manifest has ${manifest.layers.length} layers, its config ${file.diffIds.length}`,
    );
  }
}

function blobName(digest: string): string {
  if (!isDigest(digest)) throw new DataLossError(`Not a sha256 digest: "${digest}"`);
  return `blobs/sha256/${digestHex(digest)}`;
}

function safeCanonical(name: string): string | undefined {
  try {
    return canonicalReference(parseImageReference(name));
  } catch {
    return undefined;
  }
}

/** `repo:tag` for a name that is a whole reference with a tag; undefined otherwise. */
function safeTag(name: string): string | undefined {
  if (!name.includes("/") && !name.includes(":")) return undefined; // a bare tag names no repo
  try {
    return repoTag(parseImageReference(name)) ?? undefined;
  } catch {
    return undefined;
  }
}
