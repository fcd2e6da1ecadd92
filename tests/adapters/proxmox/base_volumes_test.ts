/**
 * The simulator's LXC driver unpacks a template once and gives each CT a private copy of it,
 * as a linked clone would be: same files, owners, modes, links and times; what one CT writes
 * stays its own; the base goes when its template is removed.
 */
import assert from "node:assert/strict";
import { BaseVolumes } from "../../../adapters/proxmox/sim/base_volumes.ts";
import type { TaskLog } from "../../../adapters/proxmox/sim/driver.ts";
import { busyboxImage, layeredImage, ociLayoutArchive } from "../../_support/oci_images.ts";
import { tempDir } from "../../_support/temp_dir.ts";

function taskLog(lines: string[]): TaskLog {
  return {
    log: (line) => lines.push(line),
    warn: (line) => lines.push(`WARN: ${line}`),
    signal: new AbortController().signal,
  };
}

Deno.test("base volumes: one unpack per template, a private copy per CT, gone with the template", async () => {
  using dir = tempDir("pve-cri-bases-");
  const template = `${dir.path}/layered.tar`;
  Deno.writeFileSync(template, ociLayoutArchive(layeredImage()));
  const bases = new BaseVolumes(`${dir.path}/bases`);
  const lines: string[] = [];
  await bases.cloneInto(template, `${dir.path}/101/rootfs`, taskLog(lines));
  await bases.cloneInto(template, `${dir.path}/102/rootfs`, taskLog(lines));
  assert.equal(lines.filter((l) => l.startsWith("extracting")).length, 1, lines.join("\n"));

  const [base] = [...Deno.readDirSync(`${dir.path}/bases`)].map((e) => e.name);
  for (const path of ["etc/motd", "data", "data/new", "bin", "bin/tool", "bin/alias"]) {
    const want = Deno.lstatSync(`${dir.path}/bases/${base}/rootfs/${path}`);
    const got = Deno.lstatSync(`${dir.path}/101/rootfs/${path}`);
    assert.deepEqual(
      [got.mode, got.uid, got.gid, got.mtime?.getTime(), got.isSymlink],
      [want.mode, want.uid, want.gid, want.mtime?.getTime(), want.isSymlink],
      path,
    );
  }
  const tool = Deno.lstatSync(`${dir.path}/101/rootfs/bin/tool`);
  assert.equal(Deno.lstatSync(`${dir.path}/101/rootfs/bin/same`).ino, tool.ino, "hard link kept");
  assert.notEqual(
    Deno.lstatSync(`${dir.path}/bases/${base}/rootfs/bin/tool`).ino,
    tool.ino,
    "a copy, not the base itself",
  );
  assert.equal(Deno.readLinkSync(`${dir.path}/101/rootfs/bin/alias`), "tool");

  Deno.writeTextFileSync(`${dir.path}/101/rootfs/etc/motd`, "changed by CT 101\n");
  assert.equal(Deno.readTextFileSync(`${dir.path}/102/rootfs/etc/motd`), "upper\n");
  assert.equal(Deno.readTextFileSync(`${dir.path}/bases/${base}/rootfs/etc/motd`), "upper\n");

  // The template goes (its image was removed): the next create drops its base.
  Deno.removeSync(template);
  const other = `${dir.path}/busybox.tar`;
  Deno.writeFileSync(other, ociLayoutArchive(busyboxImage()));
  await bases.cloneInto(other, `${dir.path}/103/rootfs`, taskLog(lines));
  const left = [...Deno.readDirSync(`${dir.path}/bases`)].map((e) => e.name);
  assert.equal(left.length, 1);
  assert.notEqual(left[0], base);
});
