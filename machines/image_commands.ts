/**
 * Commands on image streams: start fetching an image (a pull or an import), name it, remove
 * it. One live stream per image id: a second pull of an image being fetched joins the first
 * (the projection key decides, in the commit), so one image is downloaded once.
 */
import { FailedPreconditionError } from "../lib/errors.ts";
import { ProjectionKeyConflictError } from "../store/mod.ts";
import type { CommandOptions } from "./commands.ts";
import type { FoldState } from "./compiled_machine.ts";
import type { EventOf, NewEvent } from "./events.ts";
import { machines } from "./fold.ts";
import type { ImageContext } from "./image_context.ts";
import type { ImageSummary } from "./projections.ts";
import type { Decision, Registry } from "./registry.ts";
import type { StreamActor } from "./stream_actor.ts";

export type ImageState = FoldState<ImageContext>;
type ImageActor = StreamActor<ImageContext>;

export type ImageStart =
  | { type: "ImagePullStarted"; data: EventOf<"ImagePullStarted">["data"] }
  | { type: "ImageImportStarted"; data: EventOf<"ImageImportStarted">["data"] };

export interface ImageNames {
  repoTags: string[];
  repoDigests: string[];
}

/** The live image streams. */
export function imageActors(registry: Registry): ImageActor[] {
  return registry.actors("image") as ImageActor[];
}

/** The live stream of an image id, if any. */
export function imageActorOf(registry: Registry, imageId: string): ImageActor | undefined {
  return imageActors(registry).find((a) => (a.summary as ImageSummary).imageId === imageId);
}

/**
 * Records that an image's content is to be fetched, under stream `id`, unless a live stream
 * holds that image already. Returns the stream that holds it and whether it is the new one.
 */
export async function startImage(
  registry: Registry,
  id: string,
  start: ImageStart,
  options: CommandOptions = {},
): Promise<{ stream: string; created: boolean }> {
  const actor = registry.newActor("image", id);
  try {
    await registry.commit([{ actor, events: [start as NewEvent], meta: options.meta ?? {} }]);
    return { stream: id, created: true };
  } catch (error) {
    if (error instanceof ProjectionKeyConflictError) {
      return { stream: error.holder, created: false };
    }
    throw error;
  }
}

/** The image stream's state once it is present, failed or removed (final). */
export async function imageSettled(
  registry: Registry,
  stream: string,
  signal?: AbortSignal,
): Promise<ImageState | undefined> {
  const actor = registry.get(stream) as ImageActor | undefined;
  if (actor?.kind !== "image") return undefined;
  return await actor.until((s) => machines.image.isSettled(s.value), signal);
}

/**
 * Points names at a present image. A name held by another image moves: that image is
 * untagged in the same commit, so a tag never names two images.
 */
export async function tagImage(
  registry: Registry,
  stream: string,
  names: ImageNames,
  options: CommandOptions = {},
): Promise<ImageState> {
  const actor = registry.get(stream) as ImageActor | undefined;
  if (actor?.kind !== "image") {
    throw new FailedPreconditionError(`Image stream "${stream}" is gone`);
  }
  return await actor.enqueue(async () => {
    const state = await actor.until((s) => machines.image.isSettled(s.value), options.signal);
    if (state.value !== "present") {
      throw new FailedPreconditionError(
        `Image ${state.context.imageId} is ${state.value}: it cannot be named`,
        { details: { image: state.context.imageId } },
      );
    }
    // Decided and committed in one go: no other command can move a name in between.
    const meta = options.meta ?? {};
    const decisions: Decision[] = [];
    for (const other of imageActors(registry)) {
      if (other === actor || other.value !== "present") continue;
      const summary = other.summary as ImageSummary;
      const repoTags = summary.repoTags.filter((t) => names.repoTags.includes(t));
      const repoDigests = summary.repoDigests.filter((d) => names.repoDigests.includes(d));
      if (repoTags.length + repoDigests.length === 0) continue;
      decisions.push({
        actor: other,
        events: [{ type: "ImageUntagged", data: { repoTags, repoDigests } }],
        meta,
      });
    }
    const repoTags = names.repoTags.filter((t) => !state.context.repoTags.includes(t));
    const repoDigests = names.repoDigests.filter((d) => !state.context.repoDigests.includes(d));
    if (repoTags.length + repoDigests.length > 0) {
      decisions.push({
        actor,
        events: [{ type: "ImageTagged", data: { repoTags, repoDigests } }],
        meta,
      });
    }
    if (decisions.length > 0) await registry.commit(decisions);
    return actor.state;
  });
}

/** Removes a present image (its template, its blobs no other image uses). */
export async function removeImage(
  registry: Registry,
  stream: string,
  options: CommandOptions = {},
): Promise<ImageState | undefined> {
  const actor = registry.get(stream) as ImageActor | undefined;
  if (actor?.kind !== "image") return undefined;
  return await actor.enqueue(async () => {
    const state = await actor.until((s) => machines.image.isSettled(s.value), options.signal);
    if (state.value !== "present") return state;
    await registry.commit([
      { actor, events: [{ type: "ImageRemoveRequested", data: {} }], meta: options.meta ?? {} },
    ]);
    return await actor.until((s) => machines.image.isSettled(s.value), options.signal);
  });
}
