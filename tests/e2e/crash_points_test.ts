/**
 * Crash injection, the ground the crash-point matrix stands on: PVE_CRI_CRASH_AFTER kills the
 * server right after the Nth commit of an event type, PVE_CRI_CRASH_BEFORE_EFFECT right before
 * an effect starts; the log then ends exactly there, and a restart resumes from it. A point
 * that names no event type or effect is refused at start.
 */
import assert from "node:assert/strict";
import { bufferOutput } from "../../cli/output.ts";
import { runReplay } from "../../cli/replay.ts";
import { connect, type CriMessage } from "../_support/cri_client.ts";
import { startServer, startTaskArgs } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { seedImage } from "../_support/test_image.ts";
import { until } from "../_support/until.ts";

function timeline(stateDir: string, kind: string): string[] {
  const list = bufferOutput();
  runReplay(["--state-dir", stateDir, "--json"], list);
  const stream = JSON.parse(list.stdout.join("\n")).streams
    .find((s: CriMessage) => s.kind === kind).stream;
  const out = bufferOutput();
  runReplay([stream, "--state-dir", stateDir, "--json"], out);
  return JSON.parse(out.stdout.join("\n")).events.map((e: CriMessage) => e.type);
}

const pod = {
  metadata: { name: "web", uid: "web-uid", namespace: "crash", attempt: 0 },
  linux: {},
};

Deno.test("PVE_CRI_CRASH_AFTER: the server dies right after the commit; a restart resumes from it", async () => {
  using dir = tempDir();
  const stateDir = `${dir.path}/state`;
  const server = await startServer({
    dir: dir.path,
    env: { PVE_CRI_CRASH_AFTER: "NamespacesPinned" },
  });
  const cri = await connect(server.socket);
  await assert.rejects(cri.runtime.RunPodSandbox({ config: pod }));
  cri.close();
  const status = await server.child.status;
  assert.equal(status.signal, "SIGKILL");
  assert.deepEqual(timeline(stateDir, "sandbox"), ["SandboxRequested", "NamespacesPinned"]);

  await using restarted = await startServer({ dir: dir.path });
  const again = await connect(restarted.socket);
  try {
    const ready = await until("the sandbox to resume", async () => {
      const { items } = await again.runtime.ListPodSandbox({});
      return items.find((p: CriMessage) => p.state === "SANDBOX_READY");
    }, 30_000);
    assert.equal(ready.metadata.name, "web");
    assert.deepEqual(timeline(stateDir, "sandbox").slice(0, 3), [
      "SandboxRequested",
      "NamespacesPinned",
      "CniAddStarted",
    ]);
  } finally {
    again.close();
  }
});

Deno.test("PVE_CRI_CRASH_BEFORE_EFFECT: the server dies before the effect's first step; a restart runs it", async () => {
  using dir = tempDir();
  const stateDir = `${dir.path}/state`;
  await seedImage({ stateDir, name: "busybox" });
  const server = await startServer({
    dir: dir.path,
    env: { PVE_CRI_CRASH_BEFORE_EFFECT: "createCt" },
  });
  const cri = await connect(server.socket);
  const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config: pod });
  await assert.rejects(cri.runtime.CreateContainer({
    pod_sandbox_id,
    config: { metadata: { name: "app" }, image: { image: "busybox" }, linux: {} },
    sandbox_config: pod,
  }));
  cri.close();
  assert.equal((await server.child.status).signal, "SIGKILL");
  // Nothing of createCt happened: no Proxmox task was recorded.
  assert.deepEqual(timeline(stateDir, "container"), [
    "ContainerRequested",
    "ImageResolved",
    "VmidAllocated",
  ]);

  await using restarted = await startServer({ dir: dir.path });
  const again = await connect(restarted.socket);
  try {
    const created = await until("the container to be created", async () => {
      const { containers } = await again.runtime.ListContainers({});
      return containers.find((c: CriMessage) => c.state === "CONTAINER_CREATED");
    }, 30_000);
    assert.equal(created.metadata.name, "app");
  } finally {
    again.close();
  }
});

Deno.test("a crash point that names no event type or effect is refused at start", async () => {
  using dir = tempDir();
  for (
    const [variable, value] of [
      ["PVE_CRI_CRASH_AFTER", "NoSuchEvent"],
      ["PVE_CRI_CRASH_BEFORE_EFFECT", "createCt:0"],
    ]
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...startTaskArgs(),
        "--socket",
        `${dir.path}/cri.sock`,
        "--state-dir",
        `${dir.path}/state`,
        "--http",
        "off",
        "--backend",
        "memory",
      ],
      env: { [variable!]: value! },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2, "bad config: exit 2");
    assert.match(new TextDecoder().decode(out.stderr), new RegExp(`${variable}="${value}"`));
  }
});

Deno.test("a double crash: killed again while recovering, the next restart still finishes the work", async () => {
  using dir = tempDir();
  const stateDir = `${dir.path}/state`;
  await seedImage({ stateDir, name: "busybox" });
  const first = await startServer({ dir: dir.path, env: { PVE_CRI_CRASH_AFTER: "VmidAllocated" } });
  const cri = await connect(first.socket);
  const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config: pod });
  await assert.rejects(cri.runtime.CreateContainer({
    pod_sandbox_id,
    config: { metadata: { name: "app" }, image: { image: "busybox" }, linux: {} },
    sandbox_config: pod,
  }));
  cri.close();
  assert.equal((await first.child.status).signal, "SIGKILL");

  // Recovery resumes createCt at once (the VMID is recorded, the CT not made); the second crash
  // comes right after the CT is created and configured, with no CRI call made: during recovery,
  // whether or not the restarted server got to serve first.
  const second = await startServer({
    dir: dir.path,
    env: { PVE_CRI_CRASH_AFTER: "CtConfigured" },
  }).catch((error: Error) => {
    assert.match(error.message, /crash injected.*after committing CtConfigured/s);
    return undefined;
  });
  if (second !== undefined) assert.equal((await second.child.status).signal, "SIGKILL");
  assert.deepEqual(timeline(stateDir, "container").slice(-2), ["CtCreated", "CtConfigured"]);

  await using third = await startServer({ dir: dir.path });
  const again = await connect(third.socket);
  try {
    const { containers } = await again.runtime.ListContainers({});
    assert.deepEqual(containers.map((c: CriMessage) => [c.metadata.name, c.state]), [
      ["app", "CONTAINER_CREATED"],
    ]);
    await again.runtime.StartContainer({ container_id: containers[0].id });
    await again.runtime.StopPodSandbox({ pod_sandbox_id });
    await again.runtime.RemovePodSandbox({ pod_sandbox_id });
    assert.deepEqual(
      [...Deno.readDirSync(`${stateDir}/proxmox/lxc`)],
      [],
      "no CT left after the pod is removed",
    );
  } finally {
    again.close();
  }
});
