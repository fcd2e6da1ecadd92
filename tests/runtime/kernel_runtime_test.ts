import assert from "node:assert/strict";
import { silentLogger } from "../../lib/log.ts";
import { openRuntime } from "../../runtime/open_runtime.ts";
import { containerSpec, sandboxSpec } from "../_support/specs.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { testImageName, writeArchive } from "../_support/test_image.ts";

const call = { meta: { method: "test" } };

function openMemoryRuntime(stateDir: string) {
  return openRuntime({ stateDir, backend: "memory", log: silentLogger, version: "test" });
}

/** The tests' image, imported from an archive (no registry needed). */
function importTestImage(rt: Awaited<ReturnType<typeof openMemoryRuntime>>, dir: string) {
  return rt.runtime.importImage(writeArchive(dir), call, { name: testImageName });
}

Deno.test("the memory backend runs a pod and a container on simulated Proxmox CTs", async () => {
  using dir = tempDir();
  const rt = await openMemoryRuntime(dir.path);
  try {
    const image = await importTestImage(rt, dir.path);
    assert.deepEqual(image.repoTags, ["docker.io/library/busybox:1.36"]);
    const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
    assert.equal(pod.state, "SANDBOX_READY");
    assert.match(pod.ips[0]!, /^10\.88\./);
    const created = await rt.runtime.createContainer(pod.id, containerSpec("app"), call);
    assert.equal(created.state, "CONTAINER_CREATED");
    assert.ok(created.vmid !== null && created.vmid >= 100);
    const config = await rt.api.ctConfig({ vmid: created.vmid });
    assert.match(config.tags ?? "", /pve-cri/);
    assert.equal(JSON.parse(config.description!)["pve-cri"].containerId, created.id);
    assert.match(config.env ?? "", /GREETING=hello/);
    assert.match(
      config.env ?? "",
      /^PATH=\/usr\/local\/sbin:.*\0GREETING=hello/,
      "image env first",
    );
    assert.equal(config.entrypoint, "/bin/sh -c 'sleep 3600'");
    await rt.runtime.startContainer(created.id, call);
    assert.equal(rt.runtime.container(created.id)!.state, "CONTAINER_RUNNING");
    assert.equal((await rt.api.ctStatus({ vmid: created.vmid })).status, "running");
    await rt.runtime.stopContainer(created.id, 0, call);
    const stopped = rt.runtime.container(created.id)!;
    assert.equal(stopped.state, "CONTAINER_EXITED");
    assert.equal(stopped.exitCode, 137);
    await rt.runtime.removePodSandbox(pod.id, call);
    assert.equal(rt.runtime.sandbox(pod.id), undefined);
    assert.equal(rt.runtime.container(created.id), undefined);
    await assert.rejects(rt.api.ctStatus({ vmid: created.vmid }), /does not exist/);
  } finally {
    await rt.close();
  }
});

Deno.test("listings hand out the same item while a stream is unchanged, and a new one after", async () => {
  using dir = tempDir();
  const rt = await openMemoryRuntime(dir.path);
  try {
    await importTestImage(rt, dir.path);
    const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
    const created = await rt.runtime.createContainer(pod.id, containerSpec("app"), call);
    const [before] = rt.runtime.containers();
    const [sandbox] = rt.runtime.sandboxes();
    // The CRI adapter keeps each item's encoding: an item must not change under it.
    assert.equal(rt.runtime.containers()[0], before);
    assert.equal(rt.runtime.sandboxes()[0], sandbox);
    await rt.runtime.startContainer(created.id, call);
    const [after] = rt.runtime.containers();
    assert.notEqual(after, before);
    assert.equal(before!.state, "CONTAINER_CREATED");
    assert.equal(after!.state, "CONTAINER_RUNNING");
    assert.equal(rt.runtime.sandboxes()[0], sandbox, "the pod did not change");
  } finally {
    await rt.close();
  }
});

Deno.test("CreateContainer of an image never pulled is NotFound and records nothing", async () => {
  using dir = tempDir();
  const rt = await openMemoryRuntime(dir.path);
  try {
    const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
    await assert.rejects(
      rt.runtime.createContainer(pod.id, { ...containerSpec("app"), image: "nginx:1.27" }, call),
      (error: Error & { code?: string }) =>
        error.constructor.name === "NotFoundError" &&
        /nginx:1\.27.*pull it first/.test(error.message),
    );
    assert.deepEqual(rt.runtime.containers(), []);
    assert.equal(rt.runtime.sandboxes()[0]!.state, "SANDBOX_READY");
    assert.equal(rt.store.listStreams().filter((s) => s.kind === "container").length, 0);
  } finally {
    await rt.close();
  }
});

Deno.test("a container's log path is its pod's log directory joined with its own, or none", async () => {
  using dir = tempDir();
  const rt = await openMemoryRuntime(dir.path);
  try {
    await importTestImage(rt, dir.path);
    const logged = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
    const app = await rt.runtime.createContainer(
      logged.id,
      containerSpec("app", { logPath: "app/0.log" }),
      call,
    );
    assert.equal(app.logPath, "/var/log/pods/default_web/app/0.log");
    assert.equal(rt.runtime.container(app.id)!.logPath, "/var/log/pods/default_web/app/0.log");
    const quiet = await rt.runtime.createContainer(
      logged.id,
      containerSpec("quiet", { logPath: "" }),
      call,
    );
    assert.equal(quiet.logPath, "", "no log path given: logging off, as containerd has it");
    const bare = await rt.runtime.runPodSandbox(sandboxSpec("bare", { logDirectory: "" }), call);
    const lone = await rt.runtime.createContainer(bare.id, containerSpec("lone"), call);
    assert.equal(rt.runtime.container(lone.id)!.logPath, "", "no log directory: logging off");
  } finally {
    await rt.close();
  }
});

Deno.test("VMIDs stay in the cluster's next-id range; a full range is ResourceExhausted", async () => {
  using dir = tempDir();
  const configFile = `${dir.path}/config.json`;
  Deno.writeTextFileSync(configFile, JSON.stringify({ lxc: { vmids: [200, 203] } }));
  const rt = await openRuntime({
    stateDir: `${dir.path}/state`,
    backend: "memory",
    configFile,
    log: silentLogger,
    version: "test",
  });
  try {
    await importTestImage(rt, dir.path);
    const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
    const made = [];
    for (const name of ["a", "b", "c"]) {
      made.push(await rt.runtime.createContainer(pod.id, containerSpec(name), call));
    }
    assert.deepEqual(made.map((c) => c.vmid), [200, 201, 202]);
    await assert.rejects(
      rt.runtime.createContainer(pod.id, containerSpec("d"), call),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "ResourceExhausted", error.message);
        assert.match(error.message, /free VMID in (the cluster.s next-id )?range/);
        return true;
      },
    );
    // One freed below the range's end: counting up would pass it; Proxmox is asked again.
    await rt.runtime.removeContainer(made[0]!.id, call);
    const again = await rt.runtime.createContainer(pod.id, containerSpec("e"), call);
    assert.equal(again.vmid, 200);
  } finally {
    await rt.close();
  }
});

Deno.test("StopPodSandbox does not wait for the destroy of a container already being removed; RemovePodSandbox does", async () => {
  using dir = tempDir();
  const rt = await openMemoryRuntime(dir.path);
  try {
    await importTestImage(rt, dir.path);
    const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
    const app = await rt.runtime.createContainer(pod.id, containerSpec("app"), call);
    await rt.runtime.startContainer(app.id, call);
    rt.simulator!.faults.add({ method: "DELETE", path: "/nodes/*/lxc/*", taskDelayMs: 300 });
    await rt.runtime.removeContainer(app.id, call);
    await rt.runtime.stopPodSandbox(pod.id, call);
    assert.equal(rt.runtime.sandbox(pod.id)!.state, "SANDBOX_NOTREADY");
    assert.equal((await rt.api.ctStatus({ vmid: app.vmid! })).status, "stopped", "still there");
    await rt.runtime.removePodSandbox(pod.id, call);
    await assert.rejects(rt.api.ctStatus({ vmid: app.vmid! }), /does not exist/);
    assert.equal(rt.registry.get(app.id), undefined, "the container's stream ended removed");
  } finally {
    await rt.close();
  }
});

Deno.test("RemoveContainer answers once the removal is under way: gone for the CRI, its name free, the CT destroyed behind it", async () => {
  using dir = tempDir();
  const rt = await openMemoryRuntime(dir.path);
  try {
    await importTestImage(rt, dir.path);
    const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
    const first = await rt.runtime.createContainer(pod.id, containerSpec("app"), call);
    const events: string[] = [];
    const unsubscribe = rt.runtime.onContainerEvent((e) => {
      if (e.containerId === first.id) events.push(e.type);
    });
    // The destroy task runs a while after Proxmox accepted it.
    rt.simulator!.faults.add({ method: "DELETE", path: "/nodes/*/lxc/*", taskDelayMs: 300 });
    await rt.runtime.removeContainer(first.id, call);
    assert.equal(rt.runtime.container(first.id), undefined);
    assert.equal(rt.runtime.resolveContainer(first.id), undefined);
    assert.deepEqual(rt.runtime.containers().map((c) => c.id), []);
    assert.deepEqual(events, ["CONTAINER_DELETED_EVENT"]);
    assert.equal((await rt.api.ctStatus({ vmid: first.vmid! })).status, "stopped", "not gone yet");
    // A second RemoveContainer is fine; the same name waits for the removal, then is free.
    await rt.runtime.removeContainer(first.id, call);
    const second = await rt.runtime.createContainer(pod.id, containerSpec("app"), call);
    assert.notEqual(second.id, first.id);
    await assert.rejects(rt.api.ctStatus({ vmid: first.vmid! }), /does not exist/);
    assert.equal(rt.registry.get(first.id), undefined, "the stream ended removed");
    assert.deepEqual(events, ["CONTAINER_DELETED_EVENT"], "reported once");
    unsubscribe();
  } finally {
    await rt.close();
  }
});
