/**
 * crictl, the CRI's own command-line client (grpc-go), against `main.ts start`: each command
 * connects, calls and disconnects with GOAWAY, as the kubelet does on restart. Needs crictl
 * on PATH; CI has none, so the test is then skipped and says so in its name.
 */
import assert from "node:assert/strict";
import { startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";

const crictlVersion = await (async () => {
  try {
    const { success, stdout } = await new Deno.Command("crictl", { args: ["--version"] }).output();
    return success ? new TextDecoder().decode(stdout).trim() : undefined;
  } catch {
    return undefined;
  }
})();

const name = crictlVersion === undefined
  ? "crictl drives the runtime over the socket (skipped: crictl is not on PATH)"
  : `crictl drives the runtime over the socket (${crictlVersion})`;

Deno.test({ name, ignore: crictlVersion === undefined }, async () => {
  using dir = tempDir();
  await using server = await startServer({ dir: dir.path });
  const endpoint = `unix://${server.socket}`;
  const base = ["--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "10s"];
  const crictl = async (...args: string[]): Promise<string> => {
    const output = await new Deno.Command("crictl", { args: [...base, ...args] }).output();
    const text = new TextDecoder().decode(output.stdout);
    if (!output.success) {
      assert.fail(`crictl ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
    }
    return text;
  };

  const version = await crictl("version");
  assert.match(version, /RuntimeName:\s+pve-cri/);
  assert.match(version, /RuntimeApiVersion:\s+v1/);
  const info = JSON.parse(await crictl("info"));
  assert.ok(
    info.status.conditions.some((c: { type: string; status: boolean }) =>
      c.type === "RuntimeReady" && c.status
    ),
  );

  const podConfig = `${dir.path}/pod.json`;
  const containerConfig = `${dir.path}/container.json`;
  Deno.writeTextFileSync(
    podConfig,
    JSON.stringify({
      metadata: { name: "crictl-pod", namespace: "default", uid: "crictl-pod-uid", attempt: 0 },
      log_directory: `${dir.path}/logs`,
      linux: {},
    }),
  );
  Deno.writeTextFileSync(
    containerConfig,
    JSON.stringify({
      metadata: { name: "app", attempt: 0 },
      image: { image: "busybox:1.36" },
      command: ["sleep", "3600"],
      log_path: "app.log",
      linux: {},
    }),
  );

  const pod = (await crictl("runp", podConfig)).trim();
  assert.match(pod, /^[0-9a-f]{64}$/);
  assert.match(await crictl("pods"), /crictl-pod/);
  await crictl("pull", "busybox:1.36");
  assert.match(await crictl("images"), /busybox\s+1\.36/);
  const container = (await crictl("create", pod, containerConfig, podConfig)).trim();
  assert.match(container, /^[0-9a-f]{64}$/);
  await crictl("start", container);
  assert.match(await crictl("ps"), /Running\s+app/);
  assert.equal(JSON.parse(await crictl("inspect", container)).status.state, "CONTAINER_RUNNING");
  assert.match(await crictl("stats"), /app/);

  // A server stream, ended by killing the client: the server must not mind.
  const events = new Deno.Command("crictl", {
    args: [...base, "events", "--output", "json"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  await new Promise((resolve) => setTimeout(resolve, 300));
  await crictl("stop", container);
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

  await crictl("rm", container);
  await crictl("stopp", pod);
  await crictl("rmp", pod);
  assert.doesNotMatch(await crictl("pods"), /crictl-pod/);

  const stopped = await server.stop("SIGTERM");
  assert.equal(stopped.code, 0, server.stderr());
  assert.doesNotMatch(server.stderr(), /Assertion|panicked/);
});
