/**
 * A small image for tests that need one but are not about images: imported into a state dir
 * before pve-cri serves from it, as an operator on an air-gapped node imports one.
 */
import { FakeCni } from "../../adapters/cni/fake_cni.ts";
import { FakeNode } from "../../adapters/node/fake_node.ts";
import { silentLogger } from "../../lib/log.ts";
import { type Backend, openRuntime } from "../../runtime/open_runtime.ts";
import { buildImage, ociLayoutArchive, type TestImage } from "./oci_images.ts";

/** What the tests call their image; short names expand as containerd expands them. */
export const testImageName = "busybox:1.36";

/** A one-layer image with a config as busybox's (a shell as its command). */
export function smallImage(config: Record<string, unknown> = {}): TestImage {
  return buildImage({
    layers: [{
      files: {
        "bin": { type: "directory" },
        "bin/sh": { data: "#!placeholder\n", mode: 0o755 },
        "etc": { type: "directory" },
        "etc/passwd": { data: "root:x:0:0:root:/root:/bin/sh\n" },
      },
    }],
    config: {
      Cmd: ["/bin/sh"],
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      ...config,
    },
  });
}

/** Writes an OCI archive of `image` into `dir`; returns its path. */
export function writeArchive(
  dir: string,
  image: TestImage = smallImage(),
  file = "image.tar",
): string {
  const path = `${dir}/${file}`;
  Deno.writeFileSync(path, ociLayoutArchive(image));
  return path;
}

/**
 * Imports an image into a state dir with pve-cri not running (as `deno task images import`
 * does alone): the server started on it afterwards has the image.
 */
export async function seedImage(options: {
  stateDir: string;
  backend?: Backend;
  configFile?: string;
  name?: string;
  image?: TestImage;
}): Promise<string> {
  Deno.mkdirSync(options.stateDir, { recursive: true });
  const archive = writeArchive(options.stateDir, options.image, ".seed-image.tar");
  const rt = await openRuntime({
    stateDir: options.stateDir,
    backend: options.backend ?? "memory",
    ...(options.configFile === undefined ? {} : { configFile: options.configFile }),
    log: silentLogger,
    version: "test",
    // An import runs no process: the node stand-ins serve whatever the backend.
    node: new FakeNode(),
    cni: new FakeCni(),
  });
  try {
    const view = await rt.runtime.importImage(archive, { meta: { method: "seed" } }, {
      name: options.name ?? testImageName,
    });
    return view.id;
  } finally {
    await rt.close();
    Deno.removeSync(archive);
  }
}
