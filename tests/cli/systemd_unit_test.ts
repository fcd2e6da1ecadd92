import assert from "node:assert/strict";
import { startTaskArgs } from "../_support/server_process.ts";

const unit = Deno.readTextFileSync(new URL("../../deploy/pve-cri.service", import.meta.url));

function directive(name: string): string[] {
  return [...unit.matchAll(new RegExp(`^${name}=(.*)$`, "gm"))].map((m) => m[1]!);
}

Deno.test("the systemd unit runs Deno directly with the start task's flags, and never kills the containers' monitors", () => {
  const [execStart] = directive("ExecStart");
  assert.ok(execStart !== undefined);
  const [deno, ...args] = execStart.split(/\s+/);
  assert.match(
    deno!,
    /^\/\S+\/deno$/,
    "Deno itself, not npx or deno task: the server gets the signal",
  );
  const task = startTaskArgs();
  const taskFlags = task.slice(0, task.findIndex((arg) => arg.endsWith("main.ts")));
  for (const flag of taskFlags) {
    assert.ok(args.includes(flag), `${flag}, as deno.json's start task`);
  }
  const main = args.indexOf("main.ts");
  assert.equal(args[main + 1], "start");
  const options = args.slice(main + 2);
  assert.deepEqual(
    [options[options.indexOf("--socket") + 1], options[options.indexOf("--state-dir") + 1]],
    ["/run/pve-cri/pve-cri.sock", "/var/lib/pve-cri"],
  );
  assert.deepEqual(directive("KillMode"), ["process"]);
  assert.deepEqual(directive("Restart"), ["on-failure"]);
  assert.deepEqual(
    directive("RestartPreventExitStatus"),
    ["2 3"],
    "start's usage and in-use exits",
  );
});
