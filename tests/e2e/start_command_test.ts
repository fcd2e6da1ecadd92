/**
 * `deno task start` as the operator runs it: the one line it prints, SIGTERM with an open
 * GetContainerEvents stream, a second server on a live socket, the inspection endpoint.
 */
import assert from "node:assert/strict";
import { connect, type CriMessage } from "../_support/cri_client.ts";
import { H2Client } from "../_support/h2_client.ts";
import { grpcStatus, startCall, UNAVAILABLE } from "../_support/raw_calls.ts";
import { startServer, startTaskArgs } from "../_support/server_process.ts";
import { seedImage } from "../_support/test_image.ts";
import { tempDir } from "../_support/temp_dir.ts";

Deno.test("SIGTERM with an open event stream: a clean exit 0 (not the 14 s forced one), socket removed", async () => {
  using dir = tempDir();
  const server = await startServer({ dir: dir.path, env: { PVE_CRI_LOG: "debug" } });
  // The byte-level client: grpc-js in this process could abort it on the server's GOAWAY
  // (denoland/deno#36788).
  await using h2 = await H2Client.connect(server.socket);
  startCall(h2, 1, "Version");
  assert.equal(grpcStatus(await h2.response(1)).code, 0);
  startCall(h2, 3, "GetContainerEvents");
  while (!/"method":"GetContainerEvents"/.test(server.stderr())) { // the stream is open
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const { code } = await server.stop("SIGTERM");
  assert.equal(code, 0, "a shutdown past 14 s would exit 1");
  assert.throws(() => Deno.statSync(server.socket), Deno.errors.NotFound);
  const ended = grpcStatus(await h2.response(3));
  assert.deepEqual(ended, { code: UNAVAILABLE, message: "pve-cri is shutting down" });
});

Deno.test("a second server on a live socket is refused with a clear message", async () => {
  using dir = tempDir();
  await using first = await startServer({ dir: dir.path });
  const second = await new Deno.Command(Deno.execPath(), {
    args: [
      ...startTaskArgs(),
      "--socket",
      first.socket,
      "--state-dir",
      `${dir.path}/other-state`,
      "--http",
      "off",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(second.code, 1, "exit 1: a runtime error");
  const stderr = new TextDecoder().decode(second.stderr);
  assert.match(
    stderr,
    /pve-cri start: Socket ".*cri\.sock" is in use: another server answers on it/,
  );
  assert.equal(new TextDecoder().decode(second.stdout), "", "no serving line");
  // The first one is untouched.
  const cri = await connect(first.socket);
  assert.equal((await cri.runtime.Version({})).runtime_name, "pve-cri");
  cri.close();
});

Deno.test("a second server on a state dir another one owns is refused, naming the owner", async () => {
  using dir = tempDir();
  await using first = await startServer({ dir: dir.path });
  const second = await new Deno.Command(Deno.execPath(), {
    args: [
      ...startTaskArgs(),
      "--socket",
      `${dir.path}/other.sock`,
      "--state-dir",
      first.stateDir,
      "--http",
      "off",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(second.code, 3, "exit 3: the state dir is in use");
  assert.match(
    new TextDecoder().decode(second.stderr),
    new RegExp(
      `pve-cri start: State dir ".*state" is in use by another pve-cri process \\(pid ${first.child.pid}, serving on ${first.socket}\\)`,
    ),
  );
  const cri = await connect(first.socket);
  assert.equal((await cri.runtime.Version({})).runtime_name, "pve-cri", "the first one serves on");
  cri.close();
});

Deno.test("--backend lxc on a machine without LXC's tools names the package to install", async () => {
  using dir = tempDir();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      ...startTaskArgs(),
      "--socket",
      `${dir.path}/s.sock`,
      "--state-dir",
      dir.path,
      "--backend",
      "lxc",
    ],
    env: { PATH: `${dir.path}/no-tools-here` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /--backend lxc: lxc-start not found — apt-get install lxc for real containers/,
  );
  assert.equal(new TextDecoder().decode(out.stdout), "", "no serving line");
});

Deno.test("the inspection endpoint shows sandboxes, containers and a stream's history, redacted", async () => {
  using dir = tempDir();
  await seedImage({ stateDir: `${dir.path}/state`, name: "busybox" });
  // Port 0: any free port, printed on stdout and logged once.
  await using server = await startServer({ dir: dir.path, http: "127.0.0.1:0" });
  const url = await server.inspectionUrl();
  assert.match(url, /^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
  assert.equal(server.stderr().split(url).length - 1, 1, "the URL is logged once");
  const cri = await connect(server.socket);
  try {
    const config = { metadata: { name: "web", uid: "u1", namespace: "ns", attempt: 0 }, linux: {} };
    const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config });
    const { container_id } = await cri.runtime.CreateContainer({
      pod_sandbox_id,
      config: {
        metadata: { name: "app" },
        image: { image: "busybox" },
        envs: [{ key: "PASSWORD", value: new TextEncoder().encode("hunter2-secret") }],
        linux: {},
      },
      sandbox_config: config,
    });
    const get = async (path: string) => {
      const response = await fetch(`${url}${path}`);
      return { status: response.status, body: await response.json() as CriMessage, text: "" };
    };
    assert.equal((await get("/healthz")).body.ok, true);
    assert.deepEqual((await get("/v1/sandboxes")).body.map((s: CriMessage) => s.id), [
      pod_sandbox_id,
    ]);
    assert.deepEqual((await get("/v1/containers")).body.map((c: CriMessage) => c.id), [
      container_id,
    ]);
    const stream = await get(`/v1/streams/${container_id.slice(0, 10)}`);
    assert.equal(stream.status, 200);
    assert.equal(stream.body.state, "created");
    assert.equal(stream.body.events[0].type, "ContainerRequested");
    const raw = JSON.stringify(stream.body);
    assert.doesNotMatch(raw, /hunter2-secret/, "env values are redacted");
    assert.match(raw, /PASSWORD/);
    assert.equal((await get("/v1/streams/nope")).status, 404);
  } finally {
    cri.close();
  }
});
