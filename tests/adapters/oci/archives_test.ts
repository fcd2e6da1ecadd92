import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { ContentStore } from "../../../adapters/oci/content_store.ts";
import { copyArchiveLayers, scanImageArchive } from "../../../adapters/oci/image_archive.ts";
import { layoutArchive } from "../../../adapters/oci/layout_archive.ts";
import { ociManifestBytes, parseManifest } from "../../../adapters/oci/manifest.ts";
import { readOciImageConfig } from "../../../adapters/proxmox/sim/mod.ts";
import { concatBytes } from "../../../lib/bytes.ts";
import {
  buildImage,
  buildIndex,
  digestOf,
  dockerSaveArchive,
  ociLayoutArchive,
  tarOf,
} from "../../_support/oci_images.ts";
import { tempDir } from "../../_support/temp_dir.ts";

const amd64 = { os: "linux", architecture: "amd64" };
const layerFiles = [
  { "etc/": { type: "directory" as const }, "etc/os": { data: "test\n" } },
  { "app": { data: "#!/bin/sh\necho hi\n", mode: 0o755 } },
];

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test("an OCI layout archive, plain or gzip, is scanned and its layers stored, each checked", async () => {
  using dir = tempDir();
  const image = buildImage({
    layers: layerFiles.map((files) => ({ files })),
    config: { Cmd: ["/app"], User: "1000" },
  });
  const plain = `${dir.path}/app.tar`;
  Deno.writeFileSync(plain, ociLayoutArchive(image, "registry.local/team/app:v1"));
  const gzipped = `${dir.path}/app.tar.gz`;
  Deno.writeFileSync(gzipped, gzipSync(Deno.readFileSync(plain)));
  for (const path of [plain, gzipped]) {
    const found = await scanImageArchive(path, { platform: amd64 });
    assert.equal(found.format, "oci");
    assert.equal(found.config.descriptor.digest, image.id);
    assert.deepEqual(found.repoTags, ["registry.local/team/app:v1"], "named by its ref annotation");
    assert.deepEqual(found.manifest.layers.map((l) => l.digest), image.layers.map((l) => l.digest));
    const store = ContentStore.open(`${dir.path}/store-${path.endsWith("gz") ? "gz" : "plain"}`);
    await copyArchiveLayers(path, found, store, {});
    for (const layer of image.layers) assert.ok(store.has(layer.digest, layer.size));
  }
  const renamed = await scanImageArchive(plain, { name: "other:v2", platform: amd64 });
  assert.deepEqual(renamed.repoTags, ["docker.io/library/other:v2"], "--name overrides");
});

Deno.test("a docker save archive is imported with uncompressed layers, named by its RepoTags", async () => {
  using dir = tempDir();
  const tars = layerFiles.map((files) => tarOf(files));
  const image = buildImage({
    docker: true,
    layers: layerFiles.map((files) => ({ files, compression: "none" as const })),
    config: { Cmd: ["/app"] },
  });
  const path = `${dir.path}/saved.tar`;
  Deno.writeFileSync(
    path,
    dockerSaveArchive(image, ["example.com/team/app:v3", "app:latest"], tars),
  );
  const found = await scanImageArchive(path, { platform: amd64 });
  assert.equal(found.format, "docker");
  assert.equal(found.config.descriptor.digest, image.id, "the image id is the config's digest");
  assert.deepEqual(found.repoTags, ["example.com/team/app:v3", "docker.io/library/app:latest"]);
  assert.deepEqual(found.manifest.layers.map((l) => l.digest), tars.map(digestOf));
  assert.deepEqual(found.manifest.layers.map((l) => l.mediaType), [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar",
  ]);
  const store = ContentStore.open(`${dir.path}/store`);
  await copyArchiveLayers(path, found, store, {});
  for (const tar of tars) assert.deepEqual(Deno.readFileSync(store.path(digestOf(tar))), tar);
});

Deno.test("an archive that is not an image, or lacks a layer, or holds a layer that lies, is refused", async () => {
  using dir = tempDir();
  const notTar = `${dir.path}/notes.txt`;
  Deno.writeTextFileSync(notTar, "just some text, long enough to be read as a header ".repeat(20));
  await assert.rejects(
    scanImageArchive(notTar, { platform: amd64 }),
    (e: Error & { code?: string }) =>
      e.code === "InvalidArgument" && /is not an image archive/.test(e.message),
  );
  const emptyTar = `${dir.path}/empty.tar`;
  Deno.writeFileSync(emptyTar, tarOf({ "readme": { data: "hi" } }));
  await assert.rejects(
    scanImageArchive(emptyTar, { platform: amd64 }),
    /neither an OCI image layout.*nor a docker save/,
  );
  await assert.rejects(
    scanImageArchive(`${dir.path}/absent.tar`, { platform: amd64 }),
    (e: Error & { code?: string }) => e.code === "NotFound",
  );
  const image = buildImage({ layers: [{ files: layerFiles[0]! }] });
  // Same size, different bytes: the scan trusts sizes, the copy checks every byte.
  const lying = {
    ...image,
    layers: [{ ...image.layers[0]!, data: new Uint8Array(image.layers[0]!.size).fill(1) }],
  };
  const lyingPath = `${dir.path}/lying.tar`;
  Deno.writeFileSync(lyingPath, ociLayoutArchive(lying));
  const found = await scanImageArchive(lyingPath, { platform: amd64 });
  const store = ContentStore.open(`${dir.path}/store`);
  await assert.rejects(copyArchiveLayers(lyingPath, found, store, {}), /does not match its digest/);
  assert.deepEqual(store.list(), []);
});

Deno.test("an archive with several platforms gives this node's", async () => {
  using dir = tempDir();
  const amd = buildImage({ layers: [{ files: { a: { data: "amd" } } }] });
  const arm = buildImage({ layers: [{ files: { a: { data: "arm" } } }], architecture: "arm64" });
  const index = buildIndex([
    { image: arm, platform: { os: "linux", architecture: "arm64" } },
    { image: amd, platform: amd64 },
  ]);
  const files: Record<string, { data?: Uint8Array | string; type?: "directory" }> = {
    "oci-layout": { data: '{"imageLayoutVersion":"1.0.0"}' },
    "index.json": {
      data: JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: index.mediaType, digest: index.digest, size: index.size }],
      }),
    },
    [`blobs/sha256/${index.digest.slice(7)}`]: { data: index.data },
  };
  for (const image of [amd, arm]) {
    for (const b of [image.manifest, image.config, ...image.layers]) {
      files[`blobs/sha256/${b.digest.slice(7)}`] = { data: b.data };
    }
  }
  const path = `${dir.path}/multi.tar`;
  Deno.writeFileSync(path, tarOf(files));
  const found = await scanImageArchive(path, { platform: amd64 });
  assert.equal(found.config.descriptor.digest, amd.id);
});

Deno.test("the archive for Proxmox: its stated length is its length, GNU tar reads it, PVE's reader finds the config", async () => {
  using dir = tempDir();
  const image = buildImage({
    layers: layerFiles.map((files) => ({ files })),
    config: { Entrypoint: ["/app"], Env: ["MODE=x"], User: "1000:1000" },
  });
  const store = ContentStore.open(`${dir.path}/store`);
  const parsed = parseManifest(image.manifest.data, image.manifest.mediaType, "t");
  if (parsed.kind !== "manifest") throw new Error("not a manifest");
  const manifest = ociManifestBytes(parsed.manifest);
  const manifestBlob = { digest: digestOf(manifest), size: manifest.length };
  await store.put(manifestBlob, manifest);
  await store.put(image.config, image.config.data);
  for (const layer of image.layers) await store.put(layer, layer.data);
  const archive = layoutArchive(store, {
    manifest: manifestBlob,
    config: image.config,
    layers: image.layers,
  });
  const collect = async () => {
    const parts: Uint8Array[] = [];
    for await (const chunk of archive.chunks()) parts.push(chunk);
    return concatBytes(parts);
  };
  const bytes = await collect();
  assert.equal(bytes.length, archive.length);
  assert.deepEqual(await collect(), bytes, "the same bytes every time");
  const path = `${dir.path}/pve-cri-x.tar`;
  Deno.writeFileSync(path, bytes);
  const listing = (await run("tar", ["-tf", path])).trim().split("\n");
  assert.deepEqual(listing.slice(0, 4), ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]);
  assert.equal(listing.length, 4 + 2 + image.layers.length);
  assert.deepEqual(await readOciImageConfig(path), {
    entrypoint: ["/app"],
    env: ["MODE=x"],
    user: "1000:1000",
  });
});
