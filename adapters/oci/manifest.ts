/**
 * Manifests and image indexes (OCI and Docker schema 2) as a registry or an archive gives
 * them: checked, with the one manifest for this node's platform picked out of an index, and
 * turned into the OCI manifest an archive for Proxmox holds.
 */
import { DataLossError, FailedPreconditionError, NotFoundError } from "../../lib/errors.ts";
import { requireDigest } from "./digest.ts";
import {
  type Compression,
  isIndexType,
  isManifestType,
  layerCompression,
  mediaTypes,
  ociLayerType,
} from "./media_types.ts";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export interface Layer extends Descriptor {
  compression: Compression;
}

export interface ImageManifest {
  mediaType: string;
  config: Descriptor;
  layers: Layer[];
}

export interface ImageIndex {
  mediaType: string;
  manifests: Descriptor[];
}

export type ParsedManifest =
  | { kind: "manifest"; manifest: ImageManifest }
  | { kind: "index"; index: ImageIndex };

/** What pve-cri reads of a manifest or an index at most: containerd's limit too. */
export const maxManifestBytes = 4 * 1024 * 1024;

const decoder = new TextDecoder();

/** The platform of this node, as image indexes name platforms. */
export function nodePlatform(): Platform {
  const architecture = Deno.build.arch === "aarch64" ? "arm64" : "amd64";
  return architecture === "arm64"
    ? { os: "linux", architecture, variant: "v8" }
    : { os: "linux", architecture };
}

export function platformName(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/**
 * Reads a manifest or an index. `contentType` is what the registry said it sent; the
 * document's own `mediaType` wins when both are there. `where` names it in errors.
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType: string | undefined,
  where: string,
): ParsedManifest {
  if (bytes.length > maxManifestBytes) {
    throw new DataLossError(`${where}: manifest is larger than ${maxManifestBytes} bytes`);
  }
  const doc = parseJsonObject(bytes, where, "manifest");
  const declared = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  const header = contentType?.split(";")[0]?.trim().toLowerCase();
  if (doc.schemaVersion === 1 || header?.startsWith(mediaTypes.dockerSchema1)) {
    throw new FailedPreconditionError(
      `${where}: Docker schema 1 manifests are not supported (the registry should serve schema 2)`,
    );
  }
  const type = declared ?? (isKnown(header) ? header! : inferType(doc));
  if (type === undefined) {
    throw new FailedPreconditionError(
      `${where}: unknown manifest media type "${header ?? "(none)"}"`,
    );
  }
  if (doc.schemaVersion !== 2) {
    throw new DataLossError(
      `${where}: schemaVersion must be 2, got ${JSON.stringify(doc.schemaVersion)}`,
    );
  }
  if (isIndexType(type)) {
    if (!Array.isArray(doc.manifests)) {
      throw new DataLossError(`${where}: index has no "manifests"`);
    }
    return {
      kind: "index",
      index: {
        mediaType: type,
        manifests: doc.manifests.map((m, i) => descriptor(m, `${where}: manifests[${i}]`)),
      },
    };
  }
  if (!isManifestType(type)) {
    throw new FailedPreconditionError(`${where}: unknown manifest media type "${type}"`);
  }
  const config = descriptor(doc.config, `${where}: config`);
  if (config.mediaType !== mediaTypes.ociConfig && config.mediaType !== mediaTypes.dockerConfig) {
    throw new FailedPreconditionError(
      `${where}: not a container image (its config is "${config.mediaType}")`,
    );
  }
  if (!Array.isArray(doc.layers)) throw new DataLossError(`${where}: manifest has no "layers"`);
  const layers = doc.layers.map((raw, i) => {
    const layer = descriptor(raw, `${where}: layers[${i}]`);
    const compression = layerCompression(layer.mediaType);
    if (compression === undefined) {
      throw new FailedPreconditionError(
        `${where}: layers[${i}] has media type "${layer.mediaType}", which is not a layer pve-cri can unpack`,
      );
    }
    if (compression === "zstd") {
      throw new FailedPreconditionError(
        `${where}: layers[${i}] is zstd-compressed; pve-cri takes gzip and uncompressed layers only`,
      );
    }
    if (Array.isArray((raw as { urls?: unknown }).urls)) {
      throw new FailedPreconditionError(
        `${where}: layers[${i}] is a foreign layer (fetched from URLs), which pve-cri does not fetch`,
      );
    }
    return { ...layer, compression };
  });
  return { kind: "manifest", manifest: { mediaType: type, config, layers } };
}

/**
 * The manifest an index holds for `platform`. Docker's arm64 images often name no variant;
 * one with the wanted variant is preferred, one without is taken.
 */
export function choosePlatform(index: ImageIndex, platform: Platform, where: string): Descriptor {
  const images = index.manifests.filter((m) =>
    isManifestType(m.mediaType) || isIndexType(m.mediaType)
  );
  const matching = images.filter((m) =>
    m.platform?.os === platform.os && m.platform.architecture === platform.architecture
  );
  const chosen = matching.find((m) => m.platform?.variant === platform.variant) ??
    matching.find((m) => m.platform?.variant === undefined) ?? matching[0];
  if (chosen !== undefined) return chosen;
  const offered = images
    .map((m) => m.platform)
    .filter((p): p is Platform => p !== undefined && p.os !== "unknown")
    .map(platformName);
  throw new NotFoundError(
    `${where}: the image index has no manifest for ${platformName(platform)}` +
      (offered.length > 0 ? ` (it has ${[...new Set(offered)].join(", ")})` : ""),
  );
}

/**
 * The OCI form of a manifest, byte for byte the same for the same image whatever the source
 * wrote: what goes into the archive Proxmox unpacks.
 */
export function ociManifestBytes(manifest: ImageManifest): Uint8Array {
  const doc = {
    schemaVersion: 2,
    mediaType: mediaTypes.ociManifest,
    config: {
      mediaType: mediaTypes.ociConfig,
      digest: manifest.config.digest,
      size: manifest.config.size,
    },
    layers: manifest.layers.map((l) => ({
      mediaType: ociLayerType(l.compression),
      digest: l.digest,
      size: l.size,
    })),
  };
  return new TextEncoder().encode(JSON.stringify(doc));
}

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

/** A JSON object, or DataLoss saying what the document was meant to be. */
export function parseJsonObject(bytes: Uint8Array, where: string, what: string): Json {
  let doc: unknown;
  try {
    doc = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new DataLossError(`${where}: ${what} is not JSON`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new DataLossError(`${where}: ${what} is not a JSON object`);
  }
  return doc as Json;
}

function isKnown(type: string | undefined): boolean {
  return type !== undefined && (isIndexType(type) || isManifestType(type));
}

/** Registries that send neither a mediaType field nor a useful header: judge by the fields. */
function inferType(doc: Json): string | undefined {
  if (Array.isArray(doc.manifests)) return mediaTypes.ociIndex;
  if (typeof doc.config === "object" && Array.isArray(doc.layers)) return mediaTypes.ociManifest;
  return undefined;
}

function descriptor(raw: unknown, where: string): Descriptor {
  if (typeof raw !== "object" || raw === null) {
    throw new DataLossError(`${where}: not a descriptor`);
  }
  const d = raw as Json;
  if (typeof d.mediaType !== "string") throw new DataLossError(`${where}: no mediaType`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) {
    throw new DataLossError(`${where}: size must be a non-negative integer`);
  }
  const out: Descriptor = {
    mediaType: d.mediaType,
    digest: requireDigest(d.digest, where),
    size: d.size,
  };
  const p = d.platform;
  if (
    typeof p === "object" && p !== null && typeof p.os === "string" &&
    typeof p.architecture === "string"
  ) {
    out.platform = {
      os: p.os,
      architecture: p.architecture,
      ...(typeof p.variant === "string" && p.variant !== "" ? { variant: p.variant } : {}),
    };
  }
  return out;
}
