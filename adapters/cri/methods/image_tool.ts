/**
 * pve-cri's ImageTool (proto/image_tool.proto): pull and import with their progress streamed,
 * for `deno task images` while a server runs. Progress is sent at most every 100 ms per
 * transfer, and always when one completes; the last message carries the image.
 */
import type { ImageView, PodRuntime, PullProgress } from "../../../runtime/api.ts";
import { callOf, type Message, required } from "../convert.ts";
import type { StreamHandler } from "../rpc.ts";
import { registryAuth } from "./images.ts";

export const toolPull = (rt: PodRuntime): StreamHandler => async (request: Message, ctx, send) => {
  const reference = required(request.reference, "reference");
  // The request carries the AuthConfig's credential fields under the same names.
  const auth = registryAuth(request);
  const image = await rt.pullImage(reference, callOf(ctx), {
    ...(auth === undefined ? {} : { auth }),
    onProgress: throttled(send),
  });
  send({ image: toolImage(image) });
};

export const toolImport =
  (rt: PodRuntime): StreamHandler => async (request: Message, ctx, send) => {
    const path = required(request.path, "path");
    const image = await rt.importImage(path, callOf(ctx), {
      ...(request.name ? { name: request.name } : {}),
      onProgress: throttled(send),
    });
    send({ image: toolImage(image) });
  };

function toolImage(view: ImageView): Message {
  return {
    id: view.id,
    repo_tags: view.repoTags,
    repo_digests: view.repoDigests,
    size: String(view.size),
    template: view.volid,
  };
}

/** Progress as messages, each transfer's at most every 100 ms (and when it completes). */
function throttled(send: (message: unknown) => void): (progress: PullProgress) => void {
  const last = new Map<string, number>();
  return (progress) => {
    if (progress.kind === "resolved") {
      send({
        resolved: {
          image_id: progress.imageId,
          layers: progress.layers.map((l) => ({ digest: l.digest, size: String(l.size) })),
        },
      });
      return;
    }
    const key = progress.kind === "layer" ? progress.digest : "";
    const now = performance.now();
    if (progress.done < progress.total && now - (last.get(key) ?? -Infinity) < 100) return;
    last.set(key, now);
    const transfer = {
      digest: key,
      done: String(progress.done),
      total: String(progress.total),
    };
    send(progress.kind === "layer" ? { layer: transfer } : { template: transfer });
  };
}
