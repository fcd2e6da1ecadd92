import assert from "node:assert/strict";
import { loadNetworkConfig } from "../../../adapters/cni/network_config.ts";
import { tempDir } from "../../_support/temp_dir.ts";

Deno.test("CNI config: a single-plugin .conf is a list of one; the lexically first usable file wins", () => {
  using dir = tempDir("pve-cri-cniconf-");
  Deno.writeTextFileSync(
    `${dir.path}/20-bridge.conf`,
    JSON.stringify({ cniVersion: "1.0.0", name: "podnet", type: "bridge", bridge: "cni0" }),
  );
  Deno.writeTextFileSync(`${dir.path}/30-other.conflist`, "{}");
  Deno.writeTextFileSync(`${dir.path}/README`, "not a config");
  const loaded = loadNetworkConfig(dir.path);
  assert.ok("config" in loaded, JSON.stringify(loaded));
  assert.equal(loaded.config.name, "podnet");
  assert.deepEqual(loaded.config.plugins, [
    { cniVersion: "1.0.0", name: "podnet", type: "bridge", bridge: "cni0" },
  ]);
  Deno.writeTextFileSync(
    `${dir.path}/10-first.conflist`,
    JSON.stringify({ cniVersion: "1.0.0", name: "first", plugins: [{ type: "ptp" }] }),
  );
  const again = loadNetworkConfig(dir.path);
  assert.equal("config" in again && again.config.name, "first");
});
