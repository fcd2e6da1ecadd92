/**
 * The simulator's LXC driver unpacks a template once into a base volume that CTs are linked
 * clones of; which CT is a clone of which base survives a restart; a base goes when its
 * template is removed, but never while a CT is cloned from it.
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

Deno.test("base volumes: one unpack per template, kept while a CT is cloned from it, gone after", async () => {
  using dir = tempDir("pve-cri-bases-");
  const template = `${dir.path}/layered.tar`;
  Deno.writeFileSync(template, ociLayoutArchive(layeredImage()));
  const other = `${dir.path}/busybox.tar`;
  Deno.writeFileSync(other, ociLayoutArchive(busyboxImage()));
  const lines: string[] = [];
  let bases = new BaseVolumes(`${dir.path}/bases`);
  const base = await bases.clone(101, template, taskLog(lines));
  assert.equal(await bases.clone(102, template, taskLog(lines)), base);
  assert.equal(lines.filter((l) => l.startsWith("extracting")).length, 1, lines.join("\n"));
  assert.equal(Deno.readTextFileSync(`${base}/etc/motd`), "upper\n", "the layers applied");
  const busybox = await bases.clone(103, other, taskLog(lines));

  // A restarted simulator knows its clones, and drops an unpack a crash cut short.
  bases.close();
  Deno.mkdirSync(`${dir.path}/bases/.unpack-cut-short/rootfs`, { recursive: true });
  bases = new BaseVolumes(`${dir.path}/bases`);
  assert.throws(() => Deno.statSync(`${dir.path}/bases/.unpack-cut-short`), Deno.errors.NotFound);
  assert.deepEqual([101, 102, 103, 104].map((v) => bases.baseOf(v)), [
    base,
    base,
    busybox,
    undefined,
  ]);

  // The template goes (its image was removed) while CTs are still cloned from its base.
  Deno.removeSync(template);
  bases.release(101);
  assert.ok(Deno.statSync(base).isDirectory, "a base a CT uses stays");
  bases.release(102);
  assert.throws(() => Deno.statSync(base), Deno.errors.NotFound);
  assert.ok(Deno.statSync(busybox).isDirectory, "a base whose template is there stays");
  assert.equal(bases.baseOf(102), undefined);
  // Its template deleted after its last clone went: the base goes when the driver is told.
  bases.release(103);
  assert.ok(Deno.statSync(busybox).isDirectory, "its template is still there");
  Deno.removeSync(other);
  bases.prune();
  assert.throws(() => Deno.statSync(busybox), Deno.errors.NotFound);
  bases.close();
});
