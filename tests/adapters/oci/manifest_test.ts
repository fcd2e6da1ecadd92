import assert from "node:assert/strict";
import {
  choosePlatform,
  maxManifestBytes,
  ociManifestBytes,
  parseManifest,
} from "../../../adapters/oci/manifest.ts";
import { imageUser, parseImageConfig } from "../../../adapters/oci/image_config.ts";
import { buildImage, buildIndex } from "../../_support/oci_images.ts";

const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const digest = (c: string) => `sha256:${c.repeat(64)}`;

function rejectsWithCode(fn: () => unknown, code: string, pattern: RegExp) {
  assert.throws(fn, (error: Error & { code?: string }) => {
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("OCI and Docker schema 2 manifests are read, with each layer's compression", () => {
  for (const docker of [false, true]) {
    const image = buildImage({
      docker,
      layers: [{ files: { a: { data: "a" } } }, {
        files: { b: { data: "b" } },
        compression: "none",
      }],
    });
    const parsed = parseManifest(image.manifest.data, image.manifest.mediaType, "test");
    assert.equal(parsed.kind, "manifest");
    if (parsed.kind !== "manifest") continue;
    assert.equal(parsed.manifest.config.digest, image.config.digest);
    assert.deepEqual(parsed.manifest.layers.map((l) => l.compression), ["gzip", "none"]);
    // The OCI form an archive for Proxmox holds: OCI media types, same digests and sizes.
    const oci = JSON.parse(new TextDecoder().decode(ociManifestBytes(parsed.manifest)));
    assert.equal(oci.mediaType, "application/vnd.oci.image.manifest.v1+json");
    assert.equal(oci.config.mediaType, "application/vnd.oci.image.config.v1+json");
    assert.deepEqual(oci.layers.map((l: { mediaType: string }) => l.mediaType), [
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar",
    ]);
    assert.deepEqual(ociManifestBytes(parsed.manifest), ociManifestBytes(parsed.manifest));
  }
});

Deno.test("an index gives this node's platform, and says which platforms it has when it has not", () => {
  const amd = buildImage({ layers: [{ files: { a: { data: "amd" } } }] });
  const arm = buildImage({ layers: [{ files: { a: { data: "arm" } } }], architecture: "arm64" });
  const index = buildIndex([
    { image: arm, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    { image: amd, platform: { os: "linux", architecture: "amd64" } },
  ]);
  const parsed = parseManifest(index.data, index.mediaType, "test");
  assert.equal(parsed.kind, "index");
  if (parsed.kind !== "index") return;
  const linuxAmd64 = { os: "linux", architecture: "amd64" };
  assert.equal(choosePlatform(parsed.index, linuxAmd64, "x").digest, amd.manifest.digest);
  assert.equal(
    choosePlatform(parsed.index, { os: "linux", architecture: "arm64", variant: "v8" }, "x").digest,
    arm.manifest.digest,
  );
  const armOnly = parseManifest(
    buildIndex([{ image: arm, platform: { os: "linux", architecture: "arm64" } }]).data,
    undefined,
    "test",
  );
  if (armOnly.kind !== "index") throw new Error("not an index");
  rejectsWithCode(
    () => choosePlatform(armOnly.index, linuxAmd64, "registry.local/app:v1"),
    "NotFound",
    /^registry\.local\/app:v1: the image index has no manifest for linux\/amd64 \(it has linux\/arm64\)$/,
  );
});

Deno.test("manifests that are not JSON, too large, schema 1, or of unknown or zstd types are clear errors", () => {
  rejectsWithCode(
    () => parseManifest(new TextEncoder().encode("<html>"), undefined, "m"),
    "DataLoss",
    /m: manifest is not JSON/,
  );
  rejectsWithCode(
    () => parseManifest(new Uint8Array(maxManifestBytes + 1), undefined, "m"),
    "DataLoss",
    /larger than 4194304 bytes/,
  );
  rejectsWithCode(
    () => parseManifest(text({ schemaVersion: 1, name: "x" }), undefined, "m"),
    "FailedPrecondition",
    /schema 1 manifests are not supported/,
  );
  rejectsWithCode(
    () =>
      parseManifest(
        text({ schemaVersion: 2, mediaType: "application/vnd.example+json" }),
        undefined,
        "m",
      ),
    "FailedPrecondition",
    /unknown manifest media type "application\/vnd\.example\+json"/,
  );
  const zstd = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: digest("a"), size: 2 },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar+zstd",
      digest: digest("b"),
      size: 3,
    }],
  };
  rejectsWithCode(
    () => parseManifest(text(zstd), undefined, "m"),
    "FailedPrecondition",
    /zstd-compressed/,
  );
  const helm = {
    ...zstd,
    config: { ...zstd.config, mediaType: "application/vnd.cncf.helm.config.v1+json" },
  };
  rejectsWithCode(
    () => parseManifest(text(helm), undefined, "m"),
    "FailedPrecondition",
    /not a container image/,
  );
  const badDigest = {
    ...zstd,
    layers: [{
      ...zstd.layers[0],
      digest: "sha256:short",
      mediaType: "application/vnd.oci.image.layer.v1.tar",
    }],
  };
  rejectsWithCode(
    () => parseManifest(text(badDigest), undefined, "m"),
    "DataLoss",
    /"sha256:short" is not a digest/,
  );
});

Deno.test("an image config's user is a uid when numeric, a user name otherwise", () => {
  assert.deepEqual(imageUser("1000"), { uid: 1000n });
  assert.deepEqual(imageUser("1000:1000"), { uid: 1000n });
  assert.deepEqual(imageUser("nobody"), { username: "nobody" });
  assert.deepEqual(imageUser("www:www"), { username: "www" });
  assert.deepEqual(imageUser(""), {});
  const config = parseImageConfig(
    text({
      os: "linux",
      architecture: "amd64",
      config: { User: "1000", Env: ["A=1"], Volumes: { "/data": {} }, StopSignal: "SIGINT" },
      rootfs: { type: "layers", diff_ids: [digest("c")] },
    }),
    "c",
  );
  assert.equal(config.config.user, "1000");
  assert.deepEqual(config.config.volumes, ["/data"]);
  assert.equal(config.config.stopSignal, "SIGINT");
  rejectsWithCode(
    () => parseImageConfig(text({ rootfs: {} }), "c"),
    "DataLoss",
    /no valid rootfs\.diff_ids/,
  );
});
