/**
 * ImageService: images pulled from registries (or imported) into pve-cri's content store,
 * each a CT template in Proxmox storage (see runtime/images/).
 */
import type { PodRuntime, RegistryAuth } from "../../../runtime/api.ts";
import { callOf, image, type Message, required, requiredMessage } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

export const listImages = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const wanted = request.filter?.image?.image as string | undefined;
  const images = wanted
    ? [await rt.image(wanted)].filter((i) => i !== undefined)
    : await rt.images();
  return { images: images.map(image) };
};

/** An absent image is no error: `image` is left unset. Verbose info is the image config. */
export const imageStatus = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const reference = required(requiredMessage(request.image, "image").image, "image.image");
  const found = await rt.image(reference);
  if (found === undefined) return { image: null, info: {} };
  return {
    image: image(found),
    info: request.verbose ? { info: JSON.stringify(await rt.imageInfo(found.id)) } : {},
  };
};

/**
 * Credentials in `auth` go to the registry and nowhere else: not stored, not logged. The
 * sandbox config is accepted as containerd accepts it; it changes nothing here.
 */
export const pullImage = (rt: PodRuntime): UnaryHandler => async (request: Message, ctx) => {
  const reference = required(requiredMessage(request.image, "image").image, "image.image");
  const auth = registryAuth(request.auth);
  const pulled = await rt.pullImage(reference, callOf(ctx), auth === undefined ? {} : { auth });
  return { image_ref: pulled.id };
};

/** Removing an absent image succeeds (the CRI says so); one a container uses does not. */
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

/** The CRI's AuthConfig as registry credentials; unset fields are absent, not empty. */
export function registryAuth(auth: Message | null | undefined): RegistryAuth | undefined {
  if (auth === null || auth === undefined) return undefined;
  const out: RegistryAuth = {};
  const set = (key: keyof RegistryAuth, value: unknown) => {
    if (typeof value === "string" && value !== "") out[key] = value;
  };
  set("username", auth.username);
  set("password", auth.password);
  set("auth", auth.auth);
  set("identityToken", auth.identity_token);
  set("registryToken", auth.registry_token);
  return Object.keys(out).length === 0 ? undefined : out;
}
