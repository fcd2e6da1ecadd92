/**
 * crictl itself against `main.ts start`, when it is on PATH (it is not a Debian package, so CI
 * usually skips this; the other end-to-end tests send the requests crictl sends).
 */
import assert from "node:assert/strict";
import { registryMissing, startRegistry } from "../_support/registry.ts";
import { startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { seedImage, smallImage } from "../_support/test_image.ts";

function findCrictl(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/crictl`).isFile) return `${dir}/crictl`;
    } catch { /* not here */ }
  }
  return undefined;
}

const crictl = findCrictl();
const registryGone = registryMissing();
const skip = crictl === undefined ? "crictl is not on PATH" : registryGone;

Deno.test({
  name:
    `crictl session: version, pull, images, inspecti, runp, create, start, ps, inspect, rmi refused, stop, rm, rmi, imagefsinfo, stopp, rmp${
      skip === undefined ? "" : ` (skipped: ${skip})`
    }`,
  ignore: skip !== undefined,
  async fn() {
    using dir = tempDir();
    await using registry = await startRegistry();
    await registry.push("library/busybox", "1.36", smallImage({ User: "1000" }));
    const image = `${registry.host}/library/busybox:1.36`;
    await using server = await startServer({ dir: dir.path });
    const config = `${dir.path}/crictl.yaml`;
    Deno.writeTextFileSync(
      config,
      `runtime-endpoint: unix://${server.socket}\nimage-endpoint: unix://${server.socket}\ntimeout: 10\n`,
    );
    const attempt = async (...args: string[]) => {
      const out = await new Deno.Command(crictl!, {
        args: ["--config", config, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return {
        code: out.code,
        stdout: new TextDecoder().decode(out.stdout).trim(),
        stderr: new TextDecoder().decode(out.stderr),
      };
    };
    const run = async (...args: string[]) => {
      const out = await attempt(...args);
      assert.equal(out.code, 0, `crictl ${args.join(" ")}: ${out.stderr}`);
      return out.stdout;
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
        image: { image },
        command: ["sleep", "3600"],
        envs: [{ key: "K", value: "v" }],
        log_path: "sleeper.log",
        linux: {},
      }),
    );
    assert.match(await run("version"), /RuntimeName:\s+pve-cri/);
    assert.match(await run("pull", image), /Image is up to date for sha256:[0-9a-f]{64}/);
    assert.match(await run("images"), new RegExp(`${registry.host}/library/busybox\\s+1\\.36`));
    const inspected = await run("inspecti", image);
    assert.match(inspected, /"uid":\s*\{\s*"value":\s*"1000"/, "uid from the image's User");
    assert.match(inspected, /"imageSpec"/);
    const pod = await run("runp", `${dir.path}/pod.json`);
    assert.match(pod, /^[0-9a-f]{64}$/);
    const ctr = await run("create", pod, `${dir.path}/ctr.json`, `${dir.path}/pod.json`);
    assert.match(ctr, /^[0-9a-f]{64}$/);
    await run("start", ctr);
    assert.match(await run("ps"), new RegExp(`${ctr.slice(0, 13)}.*Running.*sleeper`));
    const refused = await attempt("rmi", image);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`used by container "${ctr}"`));
    const inspect = JSON.parse(await run("inspect", ctr));
    assert.equal(inspect.status.state, "CONTAINER_RUNNING");
    assert.equal(typeof inspect.info.vmid, "number");
    assert.equal(JSON.parse(await run("inspectp", pod)).status.state, "SANDBOX_READY");
    await run("stop", ctr);
    assert.match(await run("ps", "-a"), /Exited/);
    await run("rm", ctr);
    await run("rmi", image);
    assert.doesNotMatch(await run("images"), /busybox/);
    assert.match(await run("imagefsinfo"), /"mountpoint":\s*".*\/content"/);
    await run("stopp", pod);
    await run("rmp", pod);
    assert.equal(await run("pods", "-q"), "");
  },
});

Deno.test({
  name: `crictl: info, images, stats, an events stream killed mid-call, then a clean SIGTERM${
    crictl === undefined ? " (skipped: crictl is not on PATH)" : ""
  }`,
  ignore: crictl === undefined,
  async fn() {
    // Every crictl command connects, calls and disconnects with GOAWAY, as the kubelet does on
    // restart: what aborted the process when the server ran on node:http2 (denoland/deno#36788).
    using dir = tempDir();
    await seedImage({ stateDir: `${dir.path}/state` });
    await using server = await startServer({ dir: dir.path });
    const endpoint = `unix://${server.socket}`;
    const base = ["--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "10s"];
    const run = async (...args: string[]): Promise<string> => {
      const out = await new Deno.Command(crictl!, { args: [...base, ...args] }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `crictl ${args.join(" ")}: ${stderr}`);
      return new TextDecoder().decode(out.stdout);
    };
    const info = JSON.parse(await run("info"));
    assert.ok(
      info.status.conditions.some((c: { type: string; status: boolean }) =>
        c.type === "RuntimeReady" && c.status
      ),
    );
    Deno.writeTextFileSync(
      `${dir.path}/pod.json`,
      JSON.stringify({
        metadata: { name: "events-pod", namespace: "default", uid: "events-uid", attempt: 0 },
        log_directory: `${dir.path}/logs`,
        linux: {},
      }),
    );
    Deno.writeTextFileSync(
      `${dir.path}/ctr.json`,
      JSON.stringify({
        metadata: { name: "app", attempt: 0 },
        image: { image: "busybox:1.36" },
        command: ["sleep", "3600"],
        log_path: "app.log",
        linux: {},
      }),
    );
    assert.match(await run("images"), /busybox\s+1\.36/);
    const pod = (await run("runp", `${dir.path}/pod.json`)).trim();
    const ctr = (await run("create", pod, `${dir.path}/ctr.json`, `${dir.path}/pod.json`)).trim();
    await run("start", ctr);
    assert.match(await run("stats"), /app/);

    // A server stream (GetContainerEvents), its client killed once it has what it waited for.
    const events = new Deno.Command(crictl!, {
      args: [...base, "events", "--output", "json"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await run("stop", ctr);
    const reader = events.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const until = Date.now() + 10_000;
    while (!seen.includes("CONTAINER_STOPPED_EVENT") && Date.now() < until) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    events.kill("SIGKILL");
    await events.status;
    await reader.cancel().catch(() => {});
    assert.match(seen, /CONTAINER_STOPPED_EVENT/);

    await run("rm", ctr);
    await run("stopp", pod);
    await run("rmp", pod);
    const stopped = await server.stop("SIGTERM");
    assert.equal(stopped.code, 0, server.stderr());
    assert.doesNotMatch(server.stderr(), /Assertion|panicked/);
  },
});
