/**
 * hooks.d as CRI-O and podman read it, and hooks run as the OCI runtime spec runs them: real
 * hook programs (shell scripts the test writes) given the state on stdin, their own args, env
 * and working dir; a failure and a timeout (which kills everything the hook started) reported
 * with the hook's exit and output.
 */
import assert from "node:assert/strict";
import { hookApplies, parseHookConfig } from "../../../adapters/hooks/hook_config.ts";
import { HookFailedError } from "../../../adapters/hooks/mod.ts";
import { OciHooks } from "../../../adapters/hooks/oci_hooks.ts";
import { Logger } from "../../../lib/log.ts";
import { tempDir } from "../../_support/temp_dir.ts";

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: new Logger("warn", {}, { write: (l) => lines.push(JSON.parse(l)) }) };
}

function hookFile(dir: string, name: string, config: Record<string, unknown>) {
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(`${dir}/${name}`, JSON.stringify(config));
}

const target = { annotations: {}, command: "/bin/app", hasBindMounts: false };

Deno.test("hooks.d: later dirs mask earlier files, lexical order, bad files skipped with a reason, changes seen", () => {
  using dir = tempDir("pve-cri-hooks-");
  const [usr, etc] = [`${dir.path}/usr`, `${dir.path}/etc`];
  const hook = { path: "/bin/true" };
  const valid = (stages: string[]) => ({ version: "1.0.0", hook, when: { always: true }, stages });
  hookFile(usr, "b.json", valid(["prestart"]));
  hookFile(usr, "a.json", valid(["poststop"]));
  hookFile(etc, "a.json", valid(["poststart"])); // masks usr/a.json
  hookFile(etc, "c.json", { ...valid(["prestart"]), version: "0.1.0" });
  hookFile(etc, "d.json", { ...valid(["prestart"]), hook: { path: "/no/such/hook" } });
  hookFile(etc, "e.json", { ...valid(["prestart"]), when: {} });
  hookFile(etc, "f.json", { ...valid(["later"]) });
  hookFile(etc, "g.json", { ...valid(["prestart"]), when: { commands: ["("] } });
  hookFile(etc, "h.json", { ...valid(["prestart"]), hook: { path: "bin/true" } });
  Deno.writeTextFileSync(`${dir.path}/plain`, "#!/bin/sh\n", { mode: 0o644 });
  hookFile(etc, "i.json", { ...valid(["prestart"]), hook: { path: `${dir.path}/plain` } });
  hookFile(etc, "j.json", { ...valid(["prestart"]), hook: {} });
  Deno.writeTextFileSync(`${etc}/k.json`, "{ not json");
  Deno.writeTextFileSync(`${etc}/notes.txt`, "not a hook");
  const { lines, log } = capturingLogger();
  const hooks = new OciHooks([usr, etc, `${dir.path}/missing`], log);

  assert.deepEqual(
    hooks.hooksFor(target).map((h) => h.name),
    ["poststart:a.json", "prestart:b.json"],
  );
  const reasons = Object.fromEntries(
    lines.map((l) => [String(l.file).split("/").pop(), l.reason]),
  );
  assert.deepEqual(
    Object.keys(reasons).sort(),
    ["c.json", "d.json", "e.json", "f.json", "g.json", "h.json", "i.json", "j.json", "k.json"],
  );
  assert.match(String(reasons["c.json"]), /unsupported version/);
  assert.match(String(reasons["d.json"]), /not a file/);
  assert.match(String(reasons["e.json"]), /when must set/);
  assert.match(String(reasons["f.json"]), /unknown stage "later"/);
  assert.match(String(reasons["g.json"]), /bad regex/);
  assert.match(String(reasons["h.json"]), /must be an absolute path/);
  assert.match(String(reasons["i.json"]), /is not executable/);
  assert.match(String(reasons["j.json"]), /hook\.path must be/);
  assert.match(String(reasons["k.json"]), /JSON/);

  hookFile(etc, "0-new.json", valid(["createRuntime"]));
  assert.equal(hooks.hooksFor(target)[0]?.name, "createRuntime:0-new.json", "read again");
  assert.equal(lines.length, 18, "bad files are reported once per change, not per container");
});

Deno.test("when: every condition set must match", () => {
  const config = (when: Record<string, unknown>) =>
    parseHookConfig(
      JSON.stringify({ version: "1.0.0", hook: { path: "/bin/true" }, when, stages: ["prestart"] }),
      "x.json",
    );
  const gpu = {
    annotations: { "example.com/gpu": "nvidia-0" },
    command: "/usr/bin/python3",
    hasBindMounts: true,
  };
  assert.equal(hookApplies(config({ always: true }), target), true);
  assert.equal(hookApplies(config({ always: false }), gpu), false);
  assert.equal(hookApplies(config({ annotations: { "gpu$": "^nvidia" } }), gpu), true);
  assert.equal(hookApplies(config({ annotations: { "gpu$": "^amd" } }), gpu), false);
  assert.equal(hookApplies(config({ commands: ["python"] }), gpu), true);
  assert.equal(hookApplies(config({ commands: ["^/bin/"] }), gpu), false);
  assert.equal(hookApplies(config({ hasBindMounts: true }), gpu), true);
  assert.equal(hookApplies(config({ hasBindMounts: true }), target), false);
  assert.equal(
    hookApplies(config({ commands: ["python"], annotations: { "gpu$": "^amd" } }), gpu),
    false,
    "a condition that fails fails the hook",
  );
});

Deno.test("a hook gets the state on stdin, its args, env and working dir; failures and timeouts say how", async () => {
  using dir = tempDir("pve-cri-hooks-");
  const out = `${dir.path}/out`;
  const script = `${dir.path}/hook.sh`;
  Deno.writeTextFileSync(
    script,
    `#!/bin/sh
{ echo "argv0=$0 args=$*"; echo "env=$(env | grep -v '^PWD=' | sort | tr '\\n' ' ')"; echo "cwd=$(pwd)"; echo "stdin=$(cat)"; } > ${out}
echo "to stdout"
echo "to stderr" >&2
case "$1" in
  fail) echo "no GPU found" >&2; exit 3 ;;
  hang) sleep 300 & echo $! > ${dir.path}/child; sleep 300 ;;
  big) head -c 10000 /dev/zero | tr '\\0' x ;;
esac
`,
    { mode: 0o755 },
  );
  const bundle = `${dir.path}/bundle`;
  Deno.mkdirSync(bundle);
  const hooks = new OciHooks([], capturingLogger().log);
  const state = { ociVersion: "1.0.2", id: "c1", status: "created", pid: 42, bundle };
  const signal = new AbortController().signal;
  const hook = {
    phase: "prestart",
    name: "prestart:gpu.json",
    path: script,
    args: ["gpu-hook", "ok", "--verbose"],
    env: ["ONLY=this", "NOT-AN-ASSIGNMENT"],
  };

  const outcome = await hooks.run(hook, state, { signal, cwd: bundle });
  assert.equal(outcome.exitCode, 0);
  assert.equal(outcome.stdout, "to stdout\n");
  assert.equal(outcome.stderr, "to stderr\n");
  assert.equal(outcome.timedOut, false);
  const seen = Deno.readTextFileSync(out);
  // args[0] is the hook's argv[0] (a script's interpreter does not show it); then its args.
  assert.match(seen, /^argv0=\S+ args=ok --verbose$/m);
  assert.match(seen, /^env=ONLY=this $/m, "nothing of pve-cri's env is inherited");
  assert.match(seen, new RegExp(`^cwd=${bundle}$`, "m"));
  assert.deepEqual(JSON.parse(/^stdin=(.*)$/m.exec(seen)![1]!), state);

  const big = await hooks.run({ ...hook, args: ["gpu-hook", "big"] }, state, { signal });
  assert.equal(big.stdout.length, 4096, "only the tail of a long output is kept");
  assert.match(big.stdout, /x{4000}$/);

  await assert.rejects(
    hooks.run({ ...hook, args: ["gpu-hook", "fail"] }, state, { signal }),
    (error: unknown) => {
      assert.ok(error instanceof HookFailedError);
      assert.match(error.message, /prestart:gpu\.json .* exited with 3: no GPU found/);
      assert.equal(error.outcome.exitCode, 3);
      assert.match(error.outcome.stderr, /no GPU found/);
      return true;
    },
  );

  await assert.rejects(
    hooks.run({ ...hook, args: ["gpu-hook", "hang"], timeoutSeconds: 1 }, state, { signal }),
    (error: unknown) => {
      assert.ok(error instanceof HookFailedError);
      assert.match(error.message, /timed out after 1 s/);
      assert.equal(error.outcome.timedOut, true);
      return true;
    },
  );
  const child = Number(Deno.readTextFileSync(`${dir.path}/child`));
  const gone = (() => {
    try {
      return /^\S+ \S+ Z/.test(
        Deno.readTextFileSync(`/proc/${child}/stat`).replace(/\(.*\)/, "x"),
      );
    } catch {
      return true;
    }
  })();
  assert.ok(gone, "the process the hook started went with it");
});
