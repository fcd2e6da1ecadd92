/**
 * An OCI archive unpacked into a CT's root as PVE 9.1 does it: layers in order, whiteouts and
 * opaque directories, owners and modes, symlinks and hard links; device nodes skipped with a
 * note, and nothing written outside the root.
 */
import assert from "node:assert/strict";
import { unpackOciArchive } from "../../../adapters/oci/unpack_layers.ts";
import { layeredImage, ociLayoutArchive } from "../../_support/oci_images.ts";
import { tempDir } from "../../_support/temp_dir.ts";

Deno.test("unpacking an OCI archive applies its layers in order, as PVE does", async () => {
  using dir = tempDir("pve-cri-unpack-");
  const archive = `${dir.path}/image.tar`;
  Deno.writeFileSync(archive, ociLayoutArchive(layeredImage()));
  const rootfs = `${dir.path}/ct/rootfs`;
  const notes: string[] = [];
  const { layers } = await unpackOciArchive(archive, rootfs, (line) => notes.push(line));
  assert.equal(layers, 2);

  const text = (path: string) => Deno.readTextFileSync(`${rootfs}/${path}`);
  assert.equal(text("etc/motd"), "upper\n", "the upper layer wins");
  assert.throws(() => Deno.lstatSync(`${rootfs}/etc/gone`), Deno.errors.NotFound);
  assert.deepEqual([...Deno.readDirSync(`${rootfs}/data`)].map((e) => e.name), ["new"]);
  assert.equal(Deno.statSync(`${rootfs}/data`).mode! & 0o7777, 0o750, "the dir keeps its mode");

  const tool = Deno.lstatSync(`${rootfs}/bin/tool`);
  assert.equal(tool.mode! & 0o7777, 0o4755);
  if (Deno.uid() === 0) assert.deepEqual([tool.uid, tool.gid], [1000, 1001]);
  assert.equal(Deno.readLinkSync(`${rootfs}/bin/alias`), "tool");
  assert.equal(Deno.lstatSync(`${rootfs}/bin/same`).ino, tool.ino, "a hard link, not a copy");

  assert.throws(() => Deno.lstatSync(`${rootfs}/dev/null`), Deno.errors.NotFound);
  assert.ok(notes.some((n) => n.includes("dev/null")), `device noted: ${notes.join("; ")}`);
  assert.throws(() => Deno.lstatSync(`${dir.path}/ct/escaped`), Deno.errors.NotFound);
  assert.throws(() => Deno.lstatSync("/tmp/through-link"), Deno.errors.NotFound);
  assert.ok(notes.some((n) => n.includes("../escaped")));
  assert.ok(notes.some((n) => n.includes("bin/out/through-link")));
});
