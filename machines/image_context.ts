/**
 * What an image stream remembers, and how each event changes it (the decider's evolve). An
 * image stream lives from a pull or an import until RemoveImage; its projection key is the
 * image id, so one image has one live stream.
 */
import type { Infer } from "../lib/shape.ts";
import type { DomainEvent, imageConfig, layerRef } from "./events.ts";
import type { StepError } from "./sandbox_context.ts";

export type ImageConfigFields = Infer<typeof imageConfig>;
export type LayerRef = Infer<typeof layerRef>;

export type ImageSource =
  | {
    kind: "registry";
    reference: string;
    registry: string;
    digest: string;
    /** Set when PVE's oci-registry-pull fetched the layers (they are not in the content store). */
    via?: "proxmox";
  }
  | { kind: "archive"; archive: string; format: "oci" | "docker" };

export interface ImageContext {
  /** The stream id. */
  id: string;
  /** The config's digest: what the CRI calls the image id. */
  imageId: string;
  source: ImageSource | null;
  manifestDigest: string;
  configBlob: { digest: string; size: number } | null;
  layers: LayerRef[];
  size: number;
  platform: string;
  config: ImageConfigFields | null;
  repoTags: string[];
  repoDigests: string[];
  /** Every blob is in the content store, verified. */
  contentStored: boolean;
  /** The template in Proxmox storage (`storage:vztmpl/file.tar`), once stored. */
  volid: string | null;
  createdAt: number;
  lastError: StepError | null;
}

export function initialImageContext(id: string): ImageContext {
  return {
    id,
    imageId: "",
    source: null,
    manifestDigest: "",
    configBlob: null,
    layers: [],
    size: 0,
    platform: "",
    config: null,
    repoTags: [],
    repoDigests: [],
    contentStored: false,
    volid: null,
    createdAt: 0,
    lastError: null,
  };
}

/** Whether the image's layers are in Proxmox storage only (PVE's own pull fetched them). */
export function pulledByProxmox(context: ImageContext): boolean {
  return context.source?.kind === "registry" && context.source.via === "proxmox";
}

/** Every blob of the image the content store holds, and keeps while the image lives. */
export function blobsOf(context: ImageContext): string[] {
  return [
    context.manifestDigest,
    ...(context.configBlob === null ? [] : [context.configBlob.digest]),
    ...(pulledByProxmox(context) ? [] : context.layers.map((l) => l.digest)),
  ].filter((d) => d !== "");
}

export function evolveImage(context: ImageContext, event: DomainEvent): ImageContext {
  switch (event.type) {
    case "ImagePullStarted":
    case "ImageImportStarted": {
      const d = event.data;
      return {
        ...context,
        imageId: d.imageId,
        source: event.type === "ImagePullStarted"
          ? {
            kind: "registry",
            reference: event.data.reference,
            registry: event.data.registry,
            digest: event.data.digest,
            ...(event.data.via === undefined ? {} : { via: event.data.via }),
          }
          : { kind: "archive", archive: event.data.archive, format: event.data.format },
        manifestDigest: d.manifestDigest,
        configBlob: d.config,
        layers: d.layers,
        size: d.size,
        platform: d.platform,
        config: d.imageConfig,
        createdAt: event.time,
      };
    }
    case "ImageContentStored":
      return { ...context, contentStored: true };
    case "ImageTemplateStored":
      return { ...context, volid: event.data.volid, lastError: null };
    case "ImageTagged":
      return {
        ...context,
        repoTags: union(context.repoTags, event.data.repoTags),
        repoDigests: union(context.repoDigests, event.data.repoDigests),
      };
    case "ImageUntagged":
      return {
        ...context,
        repoTags: context.repoTags.filter((t) => !event.data.repoTags.includes(t)),
        repoDigests: context.repoDigests.filter((d) => !event.data.repoDigests.includes(d)),
      };
    case "ImageRemoveRequested":
      return { ...context, lastError: null };
    case "ImageContentFailed":
    case "ImageTemplateFailed":
    case "ImageRemoveFailed":
      return {
        ...context,
        lastError: {
          event: event.type,
          error: event.data.error,
          ...(event.data.code === undefined ? {} : { code: event.data.code }),
        },
      };
    default:
      return context;
  }
}

function union(a: string[], b: string[]): string[] {
  return [...a, ...b.filter((x) => !a.includes(x))];
}
