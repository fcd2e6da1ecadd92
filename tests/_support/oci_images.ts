/**
 * Images the tests build themselves (there is no internet): layers as tar archives (gzip or
 * not), a config, a manifest; a rootfs made from Debian's busybox-static; OCI layout and
 * `docker save` archives of them.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { concatBytes } from "../../lib/bytes.ts";
import { tarHeader, type TarHeaderInput, tarPadding, tarTrailer } from "../../lib/tar.ts";

export interface FileSpec {
  /** Data for a regular file; a directory when `type` says so. */
  data?: Uint8Array | string;
  type?: "file" | "directory" | "symlink" | "hardlink" | "chardev" | "fifo";
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  data: Uint8Array;
}

export interface TestImage {
  config: Blob;
  layers: Blob[];
  manifest: Blob;
  /** The image id (the config's digest). */
  id: string;
}

export interface LayerSpec {
  files: Record<string, FileSpec>;
  /** Default gzip. */
  compression?: "gzip" | "none";
}

export interface ImageSpec {
  layers: LayerSpec[];
  config?: Record<string, unknown>;
  architecture?: string;
  /** Docker schema 2 media types instead of OCI. */
  docker?: boolean;
}

const encoder = new TextEncoder();

export function digestOf(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export function blob(mediaType: string, data: Uint8Array): Blob {
  return { mediaType, digest: digestOf(data), size: data.length, data };
}

export function jsonBlob(mediaType: string, value: unknown): Blob {
  return blob(mediaType, encoder.encode(JSON.stringify(value)));
}

/** A tar archive of these files, in the order given. */
export function tarOf(files: Record<string, FileSpec>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [name, spec] of Object.entries(files)) {
    const data = typeof spec.data === "string" ? encoder.encode(spec.data) : spec.data;
    const type = spec.type ?? "file";
    const header: TarHeaderInput = {
      name: type === "directory" && !name.endsWith("/") ? `${name}/` : name,
      type,
      size: type === "file" ? data?.length ?? 0 : 0,
      ...(spec.linkname === undefined ? {} : { linkname: spec.linkname }),
      ...(spec.mode === undefined ? {} : { mode: spec.mode }),
      ...(spec.uid === undefined ? {} : { uid: spec.uid }),
      ...(spec.gid === undefined ? {} : { gid: spec.gid }),
    };
    parts.push(tarHeader(header));
    if (type === "file" && data !== undefined) parts.push(data, tarPadding(data.length));
  }
  parts.push(tarTrailer());
  return concatBytes(parts);
}

export function buildImage(spec: ImageSpec): TestImage {
  const docker = spec.docker ?? false;
  const diffIds: string[] = [];
  const layers = spec.layers.map((layer) => {
    const tar = tarOf(layer.files);
    diffIds.push(digestOf(tar));
    const gzip = (layer.compression ?? "gzip") === "gzip";
    const mediaType = docker
      ? (gzip
        ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
        : "application/vnd.docker.image.rootfs.diff.tar")
      : (gzip
        ? "application/vnd.oci.image.layer.v1.tar+gzip"
        : "application/vnd.oci.image.layer.v1.tar");
    return blob(mediaType, gzip ? gzipSync(tar, { level: 1 }) : tar);
  });
  const config = jsonBlob(
    docker
      ? "application/vnd.docker.container.image.v1+json"
      : "application/vnd.oci.image.config.v1+json",
    {
      architecture: spec.architecture ?? "amd64",
      os: "linux",
      config: spec.config ?? {},
      rootfs: { type: "layers", diff_ids: diffIds },
      history: layers.map(() => ({ created_by: "pve-cri tests" })),
    },
  );
  const manifest = jsonBlob(
    docker
      ? "application/vnd.docker.distribution.manifest.v2+json"
      : "application/vnd.oci.image.manifest.v1+json",
    {
      schemaVersion: 2,
      mediaType: docker
        ? "application/vnd.docker.distribution.manifest.v2+json"
        : "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    },
  );
  return { config, layers, manifest, id: config.digest };
}

/** An image index over platform images. */
export function buildIndex(
  entries: { image: TestImage; platform: { os: string; architecture: string; variant?: string } }[],
): Blob {
  return jsonBlob("application/vnd.oci.image.index.v1+json", {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: entries.map(({ image, platform }) => ({
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.size,
      platform,
    })),
  });
}

/** Whether Debian's busybox-static is installed (tests that run it skip otherwise). */
export const busyboxPath = (() => {
  try {
    return Deno.statSync("/bin/busybox").isFile ? "/bin/busybox" : undefined;
  } catch {
    return undefined;
  }
})();

/** A small rootfs around a static busybox: applets as symlinks, passwd and group. */
export function busyboxRootfs(): Record<string, FileSpec> {
  if (busyboxPath === undefined) throw new Error("busybox-static is not installed");
  const files: Record<string, FileSpec> = {
    "bin": { type: "directory" },
    "bin/busybox": { data: Deno.readFileSync(busyboxPath), mode: 0o755 },
  };
  for (
    const applet of [
      "sh",
      "ls",
      "cat",
      "echo",
      "sleep",
      "true",
      "false",
      "env",
      "id",
      "pwd",
      "hostname",
      "nc",
      "wget",
      "mkdir",
      "touch",
      "kill",
      "ps",
      "grep",
      "head",
      "seq",
      "dd",
    ]
  ) {
    files[`bin/${applet}`] = { type: "symlink", linkname: "busybox" };
  }
  files["etc"] = { type: "directory" };
  files["etc/passwd"] = {
    data: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
  };
  files["etc/group"] = { data: "root:x:0:\napp:x:1000:\n" };
  files["tmp"] = { type: "directory", mode: 0o1777 };
  return files;
}

/** The image real-container tests and benchmarks run: busybox-static and a page to serve. */
export function busyboxImage(config: Record<string, unknown> = {}): TestImage {
  return buildImage({
    layers: [{
      files: {
        ...busyboxRootfs(),
        "www": { type: "directory" },
        "www/index.html": { data: "hello from c1\n" },
      },
    }],
    config: { Cmd: ["/bin/sh"], Env: ["PATH=/bin"], ...config },
  });
}

/** The OCI image layout of an image, as a tar archive (what `skopeo copy … oci-archive:` writes). */
export function ociLayoutArchive(image: TestImage, refName?: string): Uint8Array {
  const index = jsonBlob("application/vnd.oci.image.index.v1+json", {
    schemaVersion: 2,
    manifests: [{
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.size,
      ...(refName === undefined
        ? {}
        : { annotations: { "org.opencontainers.image.ref.name": refName } }),
    }],
  });
  const files: Record<string, FileSpec> = {
    "oci-layout": { data: '{"imageLayoutVersion":"1.0.0"}' },
    "index.json": { data: index.data },
    "blobs": { type: "directory" },
    "blobs/sha256": { type: "directory" },
  };
  for (const b of [image.manifest, image.config, ...image.layers]) {
    files[`blobs/sha256/${b.digest.slice(7)}`] = { data: b.data };
  }
  return tarOf(files);
}

/**
 * A `docker save` archive: `manifest.json`, the config as `<id>.json`, each layer as
 * `<dir>/layer.tar` (uncompressed, as docker writes them), `repositories`.
 */
export function dockerSaveArchive(
  image: TestImage,
  repoTags: string[],
  layerTars: Uint8Array[],
): Uint8Array {
  const id = image.config.digest.slice(7);
  const layerPaths = layerTars.map((tar) => `${digestOf(tar).slice(7)}/layer.tar`);
  const files: Record<string, FileSpec> = {};
  for (const [i, tar] of layerTars.entries()) {
    files[layerPaths[i]!.replace("/layer.tar", "")] = { type: "directory" };
    files[`${layerPaths[i]!.replace("/layer.tar", "")}/VERSION`] = { data: "1.0" };
    files[layerPaths[i]!] = { data: tar };
  }
  files[`${id}.json`] = { data: image.config.data };
  files["manifest.json"] = {
    data: JSON.stringify([{ Config: `${id}.json`, RepoTags: repoTags, Layers: layerPaths }]),
  };
  const repositories: Record<string, Record<string, string>> = {};
  for (const tag of repoTags) {
    const colon = tag.lastIndexOf(":");
    (repositories[tag.slice(0, colon)] ??= {})[tag.slice(colon + 1)] = layerPaths.at(-1)!.split(
      "/",
    )[0]!;
  }
  files["repositories"] = { data: JSON.stringify(repositories) };
  return tarOf(files);
}

/** Random bytes: layers that do not compress, for size-true benchmarks. */
export function randomBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(out.subarray(offset, Math.min(size, offset + 65536)));
  }
  return out;
}

/**
 * Two layers that exercise unpacking: an upper file over a lower one, a whiteout, an opaque
 * dir, owners and modes, links, a device node, and entries that try to leave the root.
 */
export const layeredImage = (): TestImage =>
  buildImage({
    layers: [
      {
        compression: "gzip",
        files: {
          "etc": { type: "directory" },
          "etc/motd": { data: "lower\n" },
          "etc/gone": { data: "whited out above\n" },
          "data": { type: "directory", mode: 0o750 },
          "data/old": { data: "hidden by an opaque dir above\n" },
          "bin": { type: "directory" },
          "bin/tool": { data: "#!/bin/sh\n", mode: 0o4755, uid: 1000, gid: 1001 },
          "bin/alias": { type: "symlink", linkname: "tool" },
          "bin/same": { type: "hardlink", linkname: "bin/tool" },
          "dev": { type: "directory" },
          "dev/null": { type: "chardev" },
        },
      },
      {
        compression: "none",
        files: {
          "etc/.wh.gone": { data: "" },
          "etc/motd": { data: "upper\n" },
          "data/.wh..wh..opq": { data: "" },
          "data/new": { data: "after the opaque marker\n" },
          "../escaped": { data: "must not land outside\n" },
          "bin/out": { type: "symlink", linkname: "/tmp" },
          "bin/out/through-link": { data: "must not follow a symlink\n" },
        },
      },
    ],
  });
