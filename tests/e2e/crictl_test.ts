/**
 * crictl itself against `main.ts start`, when it is on PATH (it is not a Debian package, so CI
 * usually skips this; the other end-to-end tests send the requests crictl sends).
 */
import assert from "node:assert/strict";
import { startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";

function findCrictl(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/crictl`).isFile) return `${dir}/crictl`;
    } catch { /* not here */ }
  }
  return undefined;
}

const crictl = findCrictl();

Deno.test({
  name: crictl === undefined
    ? "crictl session: version, runp, create, start, ps, inspect, stop, rm, stopp, rmp (skipped: crictl is not on PATH)"
    : "crictl session: version, runp, create, start, ps, inspect, stop, rm, stopp, rmp",
  ignore: crictl === undefined,
  async fn() {
    using dir = tempDir();
    await using server = await startServer({ dir: dir.path });
    const config = `${dir.path}/crictl.yaml`;
    Deno.writeTextFileSync(
      config,
      `runtime-endpoint: unix://${server.socket}\nimage-endpoint: unix://${server.socket}\ntimeout: 10\n`,
    );
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(crictl!, {
        args: ["--config", config, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      assert.equal(
        out.code,
        0,
        `crictl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
      );
      return stdout.trim();
    };
    Deno.writeTextFileSync(
      `${dir.path}/pod.json`,
      JSON.stringify({
        metadata: { name: "crictl-pod", namespace: "default", uid: "crictl-uid", attempt: 0 },
        log_directory: `${dir.path}/logs`,
        linux: {},
      }),
    );
    Deno.writeTextFileSync(
      `${dir.path}/ctr.json`,
      JSON.stringify({
        metadata: { name: "sleeper" },
        image: { image: "busybox:1.36" },
        command: ["sleep", "3600"],
        envs: [{ key: "K", value: "v" }],
        log_path: "sleeper.log",
        linux: {},
      }),
    );
    assert.match(await run("version"), /RuntimeName:\s+pve-cri/);
    await run("pull", "busybox:1.36");
    const pod = await run("runp", `${dir.path}/pod.json`);
    assert.match(pod, /^[0-9a-f]{64}$/);
    const ctr = await run("create", pod, `${dir.path}/ctr.json`, `${dir.path}/pod.json`);
    assert.match(ctr, /^[0-9a-f]{64}$/);
    await run("start", ctr);
    assert.match(await run("ps"), new RegExp(`${ctr.slice(0, 13)}.*Running.*sleeper`));
    const inspect = JSON.parse(await run("inspect", ctr));
    assert.equal(inspect.status.state, "CONTAINER_RUNNING");
    assert.equal(typeof inspect.info.vmid, "number");
    assert.equal(JSON.parse(await run("inspectp", pod)).status.state, "SANDBOX_READY");
    await run("stop", ctr);
    assert.match(await run("ps", "-a"), /Exited/);
    await run("rm", ctr);
    await run("stopp", pod);
    await run("rmp", pod);
    assert.equal(await run("pods", "-q"), "");
  },
});
