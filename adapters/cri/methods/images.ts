/** ImageService: images are CT templates in Proxmox storage (see runtime/template_images.ts). */
import type { PodRuntime } from "../../../runtime/api.ts";
import { callOf, image, type Message, required, requiredMessage } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const listImages = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const wanted = request.filter?.image?.image as string | undefined;
  const images = wanted
    ? [await rt.image(wanted)].filter((i) => i !== undefined)
    : await rt.images();
  return { images: images.map(image) };
};

/** An absent image is no error: `image` is left unset. */
export const imageStatus = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const reference = required(requiredMessage(request.image, "image").image, "image.image");
  const found = await rt.image(reference);
  return {
    image: found === undefined ? null : image(found),
    info: request.verbose && found ? { info: JSON.stringify({ volid: found.volid }) } : {},
  };
};

/** Credentials in `auth` are neither stored nor logged (the template pull needs none yet). */
export const pullImage = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const reference = required(requiredMessage(request.image, "image").image, "image.image");
  const pulled = await rt.pullImage(reference, callOf(ctx));
  return { image_ref: pulled.id };
};

/** Removing an absent image succeeds (the CRI says so). */
export const removeImage = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const reference = required(requiredMessage(request.image, "image").image, "image.image");
  await rt.removeImage(reference, callOf(ctx));
  return {};
};

export const imageFsInfo = (rt: PodRuntime): UnaryHandler => async () => {
  const fs = await rt.imageFsInfo();
  const usage = {
    timestamp: (BigInt(fs.timestamp) * 1_000_000n).toString(),
    fs_id: { mountpoint: fs.mountpoint },
    used_bytes: { value: String(fs.usedBytes) },
    inodes_used: { value: String(fs.inodesUsed) },
  };
  return { image_filesystems: [usage], container_filesystems: [] };
};
