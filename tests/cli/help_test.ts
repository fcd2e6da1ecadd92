import assert from "node:assert/strict";
import { runImages } from "../../cli/images.ts";
import { bufferOutput } from "../../cli/output.ts";
import { runReplay } from "../../cli/replay.ts";
import { runDrift } from "../../cli/replay_drift.ts";

const noTerminal = { isTerminal: false, write: () => {} };

Deno.test("replay, replay --drift and images print their usage on --help and exit 0", async () => {
  const runs: [string, () => number | Promise<number>, ReturnType<typeof bufferOutput>][] = [];
  for (const flag of ["--help", "-h"]) {
    const replay = bufferOutput();
    runs.push(["replay", () => runReplay([flag], replay), replay]);
    const drift = bufferOutput();
    runs.push(["replay --drift", () => runDrift(["--drift", flag], drift), drift]);
    const images = bufferOutput();
    runs.push(["images", () => runImages([flag], images, noTerminal), images]);
  }
  for (const [name, run, out] of runs) {
    assert.equal(await run(), 0, name);
    assert.deepEqual(out.stderr, [], name);
    assert.match(
      out.stdout.join("\n"),
      /^Usage: deno task (replay|images) [\s\S]*Exit status/,
      name,
    );
  }
});

Deno.test("replay and images name an unknown option as typed and exit 2", async () => {
  const replay = bufferOutput();
  assert.equal(runReplay(["--verfiy"], replay), 2);
  assert.deepEqual(replay.stderr, ['pve-cri replay: unknown option "--verfiy" (see --help)']);
  const images = bufferOutput();
  assert.equal(await runImages(["list", "--jsn"], images, noTerminal), 2);
  assert.deepEqual(images.stderr, ['pve-cri images: unknown option "--jsn" (see --help)']);
  const drift = bufferOutput();
  assert.equal(await runDrift(["--drift", "--http"], drift), 2);
  assert.deepEqual(drift.stderr, ['pve-cri replay: option "--http" needs a value']);
});

Deno.test("sim, fuzz, bench and proto print their usage on --help and exit 0; sim names an unknown option", async () => {
  const run = (script: string, ...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", new URL(`../../${script}`, import.meta.url).pathname, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  for (
    const script of [
      "adapters/proxmox/sim/main.ts",
      "fuzz/main.ts",
      "bench/main.ts",
      "proto/descriptor.ts",
    ]
  ) {
    const { code, stdout } = await run(script, "--help");
    assert.equal(code, 0, script);
    assert.match(new TextDecoder().decode(stdout), /^Usage: deno task \w+/, script);
  }
  const bad = await run("adapters/proxmox/sim/main.ts", "--bogus");
  assert.equal(bad.code, 2);
  assert.equal(
    new TextDecoder().decode(bad.stderr).trim(),
    'pve-cri sim: unknown option "--bogus" (see --help)',
  );
  // A count that is not one is refused before any server starts, naming what was wrong.
  const badCount = await run("fuzz/main.ts", "10", "--connections", "0");
  assert.equal(badCount.code, 2);
  assert.equal(
    new TextDecoder().decode(badCount.stderr).trim(),
    'pve-cri fuzz: --connections must be a whole number of at least 1, not "0"',
  );
});
