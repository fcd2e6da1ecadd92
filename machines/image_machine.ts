/**
 * An image's lifecycle: pulled (or imported) → its content fetched into the content store and,
 * at the same time, its OCI archive sent to Proxmox as a template (the archive follows the
 * blobs as they arrive, and cannot complete before every one is verified) → present (named
 * by tags and digests) → removed. Either step failing ends the stream; what was fetched and
 * verified stays in the content store for the next try.
 */
import { assign, setup } from "xstate";
import type { DomainEvent } from "./events.ts";
import { evolveImage, type ImageContext, initialImageContext } from "./image_context.ts";

/** Effects are bound by the registry; here they are only names. */
const effect = () => {};

export const imageMachine = setup({
  types: {
    context: {} as ImageContext,
    events: {} as DomainEvent,
    input: {} as { id: string },
  },
  actions: {
    record: assign(({ context, event }) => evolveImage(context, event)),
    fetchContent: effect,
    storeTemplate: effect,
    removeImage: effect,
  },
  guards: {
    contentStored: ({ context }) => context.contentStored,
    templateStored: ({ context }) => context.volid !== null,
  },
}).createMachine({
  id: "image",
  initial: "new",
  context: ({ input }) => initialImageContext(input.id),
  states: {
    new: {
      on: {
        ImagePullStarted: { target: "fetching", actions: "record" },
        ImageImportStarted: { target: "fetching", actions: "record" },
      },
    },
    /** Both at once; whichever finishes second makes the image present. */
    fetching: {
      entry: ["fetchContent", "storeTemplate"],
      on: {
        ImageContentStored: [
          { guard: "templateStored", target: "present", actions: "record" },
          { actions: "record" },
        ],
        ImageTemplateStored: [
          { guard: "contentStored", target: "present", actions: "record" },
          { actions: "record" },
        ],
        ImageContentFailed: { target: "failed", actions: "record" },
        ImageTemplateFailed: { target: "failed", actions: "record" },
      },
    },
    present: {
      tags: ["settled"],
      on: {
        ImageTagged: { actions: "record" },
        ImageUntagged: { actions: "record" },
        ImageRemoveRequested: { target: "removing", actions: "record" },
      },
    },
    removing: {
      entry: "removeImage",
      on: {
        ImageRemoved: { target: "removed", actions: "record" },
        ImageRemoveFailed: { target: "present", actions: "record" },
      },
    },
    failed: { type: "final" },
    removed: { type: "final" },
  },
});
