/**
 * Many pods at once, and a server killed with SIGKILL then restarted on the same state dir:
 * what it answers afterwards is what it answered before, and nothing it made is leaked.
 */
import assert from "node:assert/strict";
import {
  clientOptionsFromConfig,
  createProxmoxClient,
  writeProxmoxConfig,
} from "../../adapters/proxmox/mod.ts";
import { simulatorConfig, startSimulator } from "../../adapters/proxmox/sim/mod.ts";
import { connect, type CriClient, type CriMessage, status } from "../_support/cri_client.ts";
import { startServer } from "../_support/server_process.ts";
import { seedImage } from "../_support/test_image.ts";
import { tempDir } from "../_support/temp_dir.ts";

const pod = (name: string) => ({
  metadata: { name, uid: `uid-${name}`, namespace: "scale", attempt: 0 },
  hostname: name,
  log_directory: `/var/log/pods/scale_${name}`,
  labels: { batch: "scale" },
  linux: {},
});

const ctr = (name: string) => ({
  metadata: { name, attempt: 0 },
  image: { image: "busybox:1.36" },
  command: ["/bin/sleep", "3600"],
  labels: { batch: "scale" },
  log_path: `${name}.log`,
  linux: {},
});

async function podWithContainer(cri: CriClient, name: string): Promise<[string, string]> {
  const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config: pod(name) });
  const { container_id } = await cri.runtime.CreateContainer({
    pod_sandbox_id,
    config: ctr(name),
    sandbox_config: pod(name),
  });
  await cri.runtime.StartContainer({ container_id });
  return [pod_sandbox_id, container_id];
}

async function snapshot(cri: CriClient) {
  const pods = (await cri.runtime.ListPodSandbox({})).items
    .map((p: CriMessage) => `${p.id} ${p.metadata.name} ${p.state} ${p.created_at}`).sort();
  const containers = (await cri.runtime.ListContainers({})).containers
    .map((c: CriMessage) =>
      `${c.id} ${c.pod_sandbox_id} ${c.metadata.name} ${c.state} ${c.created_at}`
    )
    .sort();
  return { pods, containers };
}

Deno.test("200 pods with one container each, started in parallel, all run on distinct VMIDs", async () => {
  using dir = tempDir();
  await seedImage({ stateDir: `${dir.path}/state` });
  await using server = await startServer({ dir: dir.path, env: { PVE_CRI_LOG: "warn" } });
  const cri = await connect(server.socket);
  try {
    const started = await Promise.all(
      Array.from({ length: 200 }, (_, i) => podWithContainer(cri, `p${i}`)),
    );
    const { containers } = await cri.runtime.ListContainers({
      filter: { state: { state: "CONTAINER_RUNNING" } },
    });
    assert.equal(containers.length, 200);
    const vmids = await Promise.all(
      started.map(async ([, id]) =>
        JSON.parse(
          (await cri.runtime.ContainerStatus({ container_id: id, verbose: true })).info.info,
        ).vmid
      ),
    );
    assert.equal(new Set(vmids).size, 200, "no VMID given twice");
    assert.equal(
      (await cri.runtime.ListPodSandbox({ filter: { state: { state: "SANDBOX_READY" } } })).items
        .length,
      200,
    );
  } finally {
    cri.close();
  }
  assert.equal((await server.stop("SIGTERM")).code, 0);
});

Deno.test("after SIGKILL and a restart, ListPodSandbox and ListContainers answer the same", async () => {
  using dir = tempDir();
  await seedImage({ stateDir: `${dir.path}/state` });
  const first = await startServer({ dir: dir.path, env: { PVE_CRI_LOG: "warn" } });
  let cri = await connect(first.socket);
  const made = await Promise.all(
    Array.from({ length: 20 }, (_, i) => podWithContainer(cri, `k${i}`)),
  );
  // Some stopped and removed, so the lists hold more than one state.
  await cri.runtime.StopContainer({ container_id: made[0]![1], timeout: "0" });
  await cri.runtime.StopPodSandbox({ pod_sandbox_id: made[1]![0] });
  await cri.runtime.RemovePodSandbox({ pod_sandbox_id: made[2]![0] });
  const before = await snapshot(cri);
  cri.close();
  assert.equal((await first.stop("SIGKILL")).code, 137);

  await using second = await startServer({ dir: dir.path, env: { PVE_CRI_LOG: "warn" } });
  cri = await connect(second.socket);
  try {
    assert.deepEqual(await snapshot(cri), before);
    assert.equal(before.pods.length, 19);
    // And it goes on working: a new pod on the restarted server.
    await podWithContainer(cri, "after-restart");
  } finally {
    cri.close();
  }
});

Deno.test("SIGKILL while pods are being made: after a restart every one completes, no CT is leaked", async () => {
  using dir = tempDir();
  // A standalone simulator outlives the killed server, as a real Proxmox would.
  // Slow create and start tasks, so the kill lands while they run.
  const sim = await startSimulator({
    stateDir: `${dir.path}/sim`,
    faults: [
      { method: "POST", path: "/nodes/*/lxc", taskDelayMs: 300 },
      { method: "POST", path: "/nodes/*/lxc/*/status/start", taskDelayMs: 200 },
    ],
  });
  writeProxmoxConfig(`${dir.path}/pve.json`, simulatorConfig(sim));
  const pve = createProxmoxClient(clientOptionsFromConfig(simulatorConfig(sim)));
  try {
    await seedImage({
      stateDir: `${dir.path}/state`,
      backend: "proxmox",
      configFile: `${dir.path}/pve.json`,
    });
    const first = await startServer({
      dir: dir.path,
      backend: "proxmox",
      config: `${dir.path}/pve.json`,
      fakeNode: true,
      env: { PVE_CRI_LOG: "warn" },
    });
    let cri = await connect(first.socket);
    const inFlight = Array.from(
      { length: 30 },
      (_, i) => podWithContainer(cri, `c${i}`).catch(() => null),
    );
    await new Promise((resolve) => setTimeout(resolve, 250));
    await first.stop("SIGKILL");
    await Promise.all(inFlight);
    cri.close();

    await using second = await startServer({
      dir: dir.path,
      backend: "proxmox",
      config: `${dir.path}/pve.json`,
      fakeNode: true,
      env: { PVE_CRI_LOG: "info" },
    });
    cri = await connect(second.socket);
    try {
      // Resumed work settles; what the caller never heard of may still finish.
      for (let i = 0; i < 100; i++) {
        const { containers } = await cri.runtime.ListContainers({});
        if (containers.every((c: CriMessage) => c.state !== "CONTAINER_UNKNOWN")) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.match(second.stderr(), /"msg":"resuming stream"/, "the kill left work in flight");
      const { items } = await cri.runtime.ListPodSandbox({});
      assert.ok(items.length > 0, "some pods were made before the kill");
      assert.ok(items.every((p: CriMessage) => p.state === "SANDBOX_READY"), "every pod finished");
      const containers = new Set(
        (await cri.runtime.ListContainers({})).containers.map((c: CriMessage) => c.id),
      );
      // Every CT on Proxmox belongs to a container pve-cri knows: nothing leaked.
      for (const ct of await pve.listCts()) {
        const config = await pve.ctConfig({ vmid: ct.vmid });
        const owner = JSON.parse(config.description!)["pve-cri"].containerId;
        assert.ok(containers.has(owner), `CT ${ct.vmid} of container ${owner} is leaked`);
      }
      // The kubelet retries what it never got an answer for: a retry gets the pod that
      // exists (or AlreadyExists naming it), never a second one.
      const byName = new Map(items.map((p: CriMessage) => [p.metadata.name, p.id]));
      for (let i = 0; i < 30; i++) {
        const existing = byName.get(`c${i}`);
        try {
          const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config: pod(`c${i}`) });
          if (existing !== undefined) assert.equal(pod_sandbox_id, existing);
        } catch (error) {
          const e = error as { code: number; details: string };
          assert.equal(e.code, status.ALREADY_EXISTS, e.details);
          assert.ok(existing !== undefined && e.details.includes(existing as string));
        }
      }
      const names = (await cri.runtime.ListPodSandbox({})).items.map((p: CriMessage) =>
        p.metadata.name
      );
      assert.equal(new Set(names).size, names.length, "one sandbox per pod");
    } finally {
      cri.close();
    }
  } finally {
    pve.close();
    await sim.close();
  }
});
