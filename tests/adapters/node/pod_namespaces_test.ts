/**
 * A pod's pinned namespaces, for real (root): pinned in files a CT can join, unpinned with no
 * mount left behind, also where mountinfo escapes the pod directory's path (a space, a tab).
 */
import assert from "node:assert/strict";
import {
  mountPoints,
  pinPodNamespaces,
  unpinPodNamespaces,
} from "../../../adapters/node/pod_namespaces.ts";
import { runTool } from "../../../adapters/node/run_tool.ts";
import { tempDir } from "../../_support/temp_dir.ts";

const why = Deno.uid() === 0 ? undefined : "needs root";

const isMountPoint = (path: string) => mountPoints().has(path);

const pod = { hostname: "pod-a", dns: null, hostNetwork: false, hostIpc: false, sysctls: {} };

Deno.test({
  name:
    `pod namespaces: pinned, then unpinned with nothing mounted or left, in a path mountinfo escapes${
      why === undefined ? "" : ` (skipped: ${why})`
    }`,
  ignore: why !== undefined,
  async fn() {
    using dir = tempDir("pve-cri-pins-");
    const nsDir = `${dir.path}/pod a\tb/ns`;
    const paths = await pinPodNamespaces(nsDir, pod);
    try {
      assert.deepEqual(Object.keys(paths).sort(), ["ipc", "net", "uts"]);
      for (const path of Object.values(paths)) assert.ok(isMountPoint(path), `${path} pinned`);
      const uts = new TextDecoder().decode(
        (await new Deno.Command("nsenter", { args: [`--uts=${paths.uts}`, "hostname"] }).output())
          .stdout,
      ).trim();
      assert.equal(uts, "pod-a");
      assert.notEqual(Deno.statSync(paths.net!).ino, Deno.statSync(`/proc/${Deno.pid}/ns/net`).ino);
      await unpinPodNamespaces(nsDir, paths);
      for (const path of Object.values(paths)) assert.equal(isMountPoint(path), false);
      assert.throws(() => Deno.statSync(nsDir), Deno.errors.NotFound);
      // Again: what is gone already is fine.
      await unpinPodNamespaces(nsDir, paths);
    } finally {
      for (const path of Object.values(paths)) {
        if (isMountPoint(path)) await runTool("umount", ["-l", path]);
      }
    }
  },
});
