import assert from "node:assert/strict";
import { parseStartArgs } from "../../cli/start.ts";

Deno.test("start: --cni-conf-dir, --cni-bin-dir DIR:DIR and a repeated --hooks-dir reach the runtime", () => {
  const args = parseStartArgs([
    "--backend",
    "memory",
    "--cni-conf-dir",
    "/etc/cni/net.d",
    "--cni-bin-dir",
    "/opt/cni/bin:/usr/lib/cni",
    "--hooks-dir",
    "/etc/containers/oci/hooks.d",
    "--hooks-dir",
    "/run/hooks.d",
  ]);
  assert.equal(args.cniConfDir, "/etc/cni/net.d");
  assert.deepEqual(args.cniBinDirs, ["/opt/cni/bin", "/usr/lib/cni"]);
  assert.deepEqual(args.hooksDirs, ["/etc/containers/oci/hooks.d", "/run/hooks.d"]);
  const none = parseStartArgs(["--backend", "memory"]);
  assert.deepEqual(
    [none.cniConfDir, none.cniBinDirs, none.hooksDirs],
    [undefined, undefined, undefined],
    "unset: the config file's or the defaults",
  );
});
