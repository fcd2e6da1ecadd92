import assert from "node:assert/strict";
import { bufferOutput } from "../../cli/output.ts";
import { parseStartArgs, runStart, type StartArgs } from "../../cli/start.ts";
import { tempDir } from "../_support/temp_dir.ts";

function parsed(args: string[]): StartArgs {
  const options = parseStartArgs(args);
  assert.ok(options !== undefined, "not --help");
  return options;
}

Deno.test("start: --cni-conf-dir, --cni-bin-dir DIR:DIR and a repeated --hooks-dir reach the runtime", () => {
  const args = parsed([
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
  const none = parsed(["--backend", "memory"]);
  assert.deepEqual(
    [none.cniConfDir, none.cniBinDirs, none.hooksDirs],
    [undefined, undefined, undefined],
    "unset: the config file's or the defaults",
  );
});

Deno.test("start --help prints the usage with every option and the exit statuses, and exits 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const out = bufferOutput();
    assert.equal(await runStart([flag], out), 0);
    const text = out.stdout.join("\n");
    for (
      const option of ["--socket", "--state-dir", "--http", "--backend", "--config", "--hooks-dir"]
    ) {
      assert.ok(text.includes(option), `${option} in the usage`);
    }
    assert.match(text, /Exit status:\n {2}0 .*\n {2}1 .*[\s\S]* {2}2 .*\n {2}3 /);
    assert.deepEqual(out.stderr, []);
  }
});

Deno.test("start: bad arguments exit 2 with one line that quotes the option as typed", async () => {
  const cases: [string[], string][] = [
    [["--bogus"], 'pve-cri start: unknown option "--bogus" (see --help)'],
    [["--socket"], 'pve-cri start: option "--socket" needs a value'],
    [["extra"], 'pve-cri start: unexpected argument "extra"'],
    [
      ["--backend", "vm"],
      'pve-cri start: --backend must be auto, memory, lxc or proxmox, got "vm"',
    ],
  ];
  for (const [args, message] of cases) {
    const out = bufferOutput();
    assert.equal(await runStart(args, out), 2, args.join(" "));
    assert.deepEqual(out.stderr, [message]);
  }
});

Deno.test("start: a --config naming a missing file exits 2 and says --config", async () => {
  using dir = tempDir();
  const out = bufferOutput();
  const status = await runStart([
    "--backend",
    "memory",
    "--state-dir",
    `${dir.path}/state`,
    "--socket",
    `${dir.path}/s.sock`,
    "--http",
    "off",
    "--config",
    `${dir.path}/missing.json`,
  ], out);
  assert.equal(status, 2);
  assert.equal(out.stderr.length, 1);
  assert.match(out.stderr[0]!, /^pve-cri start: --config ".*missing\.json" cannot be read: /);
});
