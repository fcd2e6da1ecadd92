import assert from "node:assert/strict";
import { CtStore } from "../../../adapters/proxmox/sim/ct_store.ts";
import { tempDir } from "../../_support/temp_dir.ts";

Deno.test("CtStore reads each CT's file every time: a same-size edit is seen, a caller's edit is not", () => {
  using dir = tempDir();
  const cts = new CtStore(dir.path, "pve1");
  cts.write(100, { options: { hostname: "a", memory: "512" }, lxc: [["lxc.include", "/x"]] });
  const first = cts.read(100)!;
  // Callers edit what they read before writing it back; that must not reach the next read.
  first.config.options.memory = "9999";
  first.config.lxc[0]![1] = "/changed";
  first.config.lxc.push(["lxc.include", "/y"]);
  const second = cts.read(100)!;
  assert.equal(second.config.options.memory, "512");
  assert.deepEqual(second.config.lxc, [["lxc.include", "/x"]]);
  assert.equal(second.digest, first.digest);
  // Root edits the file by hand: same length, same millisecond; the next read sees it.
  const path = cts.path(100);
  Deno.writeTextFileSync(path, Deno.readTextFileSync(path).replace("memory: 512", "memory: 256"));
  const edited = cts.read(100)!;
  assert.equal(edited.config.options.memory, "256");
  assert.notEqual(edited.digest, first.digest);
  cts.remove(100);
  assert.equal(cts.read(100), undefined);
});
