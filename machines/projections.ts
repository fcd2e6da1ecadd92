/**
 * Read models of live sandboxes and containers, kept by the store inside each append, so
 * List calls and startup never need a replay. A row is the folded state itself plus a small
 * summary (what lists and startup read); it holds the name reservation as its unique key and
 * disappears when the stream reaches a final state.
 */
import type { Projector, RecordedEvent } from "../store/mod.ts";
import type { FoldState } from "./compiled_machine.ts";
import type { ContainerContext } from "./container_context.ts";
import type { StreamKind } from "./events.ts";
import { type AnyFoldState, type ContextOf, foldEvent, machines } from "./fold.ts";
import { blobsOf, type ImageConfigFields, type ImageContext } from "./image_context.ts";
import type { PodMetadata, SandboxContext } from "./sandbox_context.ts";

export interface StreamDoc<C> {
  state: string;
  context: C;
  /** Time of the stream's last event. */
  updatedAt: number;
}

type Labels = Record<string, string>;

export interface SandboxSummary {
  state: string;
  metadata: PodMetadata;
  runtimeHandler: string;
  labels: Labels;
  annotations: Labels;
  createdAt: number;
  containers: number;
}

export interface ContainerSummary {
  state: string;
  sandboxId: string;
  name: string;
  attempt: number;
  image: string;
  imageId: string | null;
  vmid: number | null;
  labels: Labels;
  annotations: Labels;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  exitCode: number | null;
}

/** An image's list entry: everything ListImages and ImageStatus answer from. */
export interface ImageSummary {
  state: string;
  imageId: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  volid: string | null;
  config: ImageConfigFields | null;
  /** Blobs the image consists of (manifest, config, layers). */
  blobs: string[];
  createdAt: number;
}

export interface SummaryOf {
  sandbox: SandboxSummary;
  container: ContainerSummary;
  image: ImageSummary;
}

export const projectionNames: { [K in StreamKind]: string } = {
  sandbox: "sandboxes",
  container: "containers",
  image: "images",
};

/** Labels or annotations from the CRI config, when it carries them. */
function stringMap(config: unknown, field: string): Labels {
  const value = typeof config === "object" && config !== null
    ? (config as Record<string, unknown>)[field]
    : undefined;
  if (typeof value !== "object" || value === null) return {};
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => typeof v === "string"),
  ) as Labels;
}

export const summarize: { [K in StreamKind]: (state: FoldState<ContextOf[K]>) => SummaryOf[K] } = {
  sandbox: ({ value, context: c }) => ({
    state: value,
    metadata: c.metadata,
    runtimeHandler: c.runtimeHandler,
    labels: stringMap(c.config, "labels"),
    annotations: stringMap(c.config, "annotations"),
    createdAt: c.createdAt,
    containers: c.containers.length,
  }),
  container: ({ value, context: c }) => ({
    state: value,
    sandboxId: c.sandboxId,
    name: c.name,
    attempt: c.attempt,
    image: c.image,
    imageId: c.imageId,
    vmid: c.vmid,
    labels: stringMap(c.config, "labels"),
    annotations: stringMap(c.config, "annotations"),
    createdAt: c.createdAt,
    startedAt: c.startedAt,
    finishedAt: c.finishedAt,
    exitCode: c.exitCode,
  }),
  image: ({ value, context: c }) => ({
    state: value,
    imageId: c.imageId,
    repoTags: c.repoTags,
    repoDigests: c.repoDigests,
    size: c.size,
    volid: c.volid,
    config: c.config,
    blobs: blobsOf(c),
    createdAt: c.createdAt,
  }),
};

/** Sandbox names are reserved as containerd does: one live sandbox per pod metadata. */
export function sandboxKey(c: SandboxContext): string {
  const m = c.metadata;
  return `${m.namespace}/${m.name}/${m.uid}/${m.attempt}`;
}

/** One live stream per image id: concurrent pulls of one image meet on this key. */
export function imageKey(c: ImageContext): string {
  return c.imageId;
}

/** Container names are reserved per sandbox and attempt. */
export function containerKey(c: ContainerContext): string {
  return `${c.sandboxId}/${c.name}/${c.attempt}`;
}

function projector<K extends StreamKind>(
  kind: K,
  keyOf: (context: ContextOf[K]) => string,
): Projector<StreamDoc<ContextOf[K]>, SummaryOf[K]> {
  return {
    name: projectionNames[kind],
    revision: 1,
    kinds: [kind],
    evolve(current, events: readonly RecordedEvent[]) {
      let state =
        (current === undefined
          ? machines[kind].initialState(events[0]!.stream)
          : { value: current.doc.state, context: current.doc.context }) as AnyFoldState;
      for (const event of events) {
        const step = foldEvent(kind, state, event);
        // The registry appends only legal events; a rebuild skips what replay reports.
        if (step.ok) state = step.state;
      }
      if (machines[kind].isFinal(state.value)) return null;
      const folded = state as FoldState<ContextOf[K]>;
      return {
        key: keyOf(folded.context),
        summary: summarize[kind](folded),
        doc: { state: folded.value, context: folded.context, updatedAt: events.at(-1)!.time },
      };
    },
  };
}

export const projectors = [
  projector("sandbox", sandboxKey),
  projector("container", containerKey),
  projector("image", imageKey),
] as const;
