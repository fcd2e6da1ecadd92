/**
 * Proxmox misbehaving under a CRI client: 5xx answers, dropped connections, failing tasks,
 * lock contention, a 30 s slow call and a restarted simulator. Each ends in success after a
 * bounded retry or in a clear gRPC error, and afterwards what pve-cri reports is what Proxmox
 * has. pve-cri runs `--backend proxmox` (node stand-ins: this is about the Proxmox calls)
 * against a simulator this test runs, so it can inject the faults and restart it.
 */
import assert from "node:assert/strict";
import {
  clientOptionsFromConfig,
  createProxmoxClient,
  writeProxmoxConfig,
} from "../../adapters/proxmox/mod.ts";
import {
  type RequestRecord,
  type Simulator,
  simulatorConfig,
  startSimulator,
} from "../../adapters/proxmox/sim/mod.ts";
import { connect, status } from "../_support/cri_client.ts";
import { assertStateTrue } from "../_support/cri_state.ts";
import { registryMissing, startRegistry } from "../_support/registry.ts";
import { startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { smallImage } from "../_support/test_image.ts";
import { until } from "../_support/until.ts";

const missing = registryMissing();

Deno.test({
  name: `Proxmox faults end in a bounded retry or a clear CRI error, the state still true${
    missing === undefined ? "" : ` (skipped: ${missing})`
  }`,
  ignore: missing !== undefined,
  fn: faults,
});

async function rejectsWith(promise: Promise<unknown>, code: number, pattern: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    const e = error as { code: number; details: string };
    assert.equal(e.code, code, `expected gRPC code ${code}, got ${e.code}: ${e.details}`);
    assert.match(e.details, pattern);
    return true;
  });
}

async function faults(t: Deno.TestContext) {
  using dir = tempDir();
  await using registry = await startRegistry();
  await registry.push("library/busybox", "1.36", smallImage());
  const image = `${registry.host}/library/busybox:1.36`;
  const simDir = `${dir.path}/sim`;
  let sim: Simulator = await startSimulator({ stateDir: simDir });
  const port = Number(new URL(sim.url).port);
  const config = simulatorConfig(sim);
  writeProxmoxConfig(`${dir.path}/pve.json`, config);
  const pve = createProxmoxClient(clientOptionsFromConfig(config));
  await using server = await startServer({
    dir: dir.path,
    backend: "proxmox",
    config: `${dir.path}/pve.json`,
    fakeNode: true,
    // Debug lines show the client's retries.
    env: { PVE_CRI_LOG: "debug" },
  });
  const cri = await connect(server.socket);
  try {
    await cri.image.PullImage({ image: { image } });
    const podConfig = {
      metadata: { name: "faulty", uid: "faulty-uid", namespace: "e2e", attempt: 0 },
      hostname: "faulty",
      log_directory: `${dir.path}/pods/faulty`,
    };
    const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config: podConfig });
    const create = (name: string, deadlineMs = 60_000) =>
      cri.runtime.CreateContainer({
        pod_sandbox_id,
        config: {
          metadata: { name, attempt: 0 },
          image: { image },
          command: ["/bin/sh", "-c", "sleep 3600"],
          log_path: `${name}.log`,
        },
        sandbox_config: podConfig,
      }, { deadlineMs }).then((r: { container_id: string }) => r.container_id);
    const stateOf = async (id: string) =>
      (await cri.runtime.ContainerStatus({ container_id: id })).status.state;
    const ctCount = async () => (await pve.listCts()).length;

    await t.step("a proxy's 503 on reads is retried: the container is made", async () => {
      sim.faults.add({ method: "GET", status: 503, message: "Service Unavailable", times: 2 });
      const id = await create("after-503");
      assert.equal(await stateOf(id), "CONTAINER_CREATED");
      await assertStateTrue(cri, pve);
    });

    await t.step(
      "a handler's 500 on the create is INTERNAL with Proxmox's text; nothing is left",
      async () => {
        const before = await ctCount();
        sim.faults.add({
          method: "POST",
          path: "/nodes/*/lxc",
          status: 500,
          message: "disk on fire",
          times: 1,
        });
        await rejectsWith(create("after-500"), status.INTERNAL, /disk on fire/);
        assert.equal(await ctCount(), before);
        await assertStateTrue(cri, pve);
        // The kubelet's retry succeeds.
        assert.equal(await stateOf(await create("after-500")), "CONTAINER_CREATED");
      },
    );

    await t.step(
      "a connection dropped after the create ran: the CT is found, not made twice",
      async () => {
        const before = await ctCount();
        sim.faults.add({ method: "POST", path: "/nodes/*/lxc", drop: "after", times: 1 });
        assert.equal(await stateOf(await create("dropped")), "CONTAINER_CREATED");
        assert.equal(await ctCount(), before + 1);
        await assertStateTrue(cri, pve);
      },
    );

    await t.step(
      "a failing create task is INTERNAL with the task's error; its CT is gone",
      async () => {
        const before = await ctCount();
        sim.faults.add({
          method: "POST",
          path: "/nodes/*/lxc",
          failTask: "no space left",
          times: 1,
        });
        await rejectsWith(create("no-space"), status.INTERNAL, /no space left/);
        assert.equal(await ctCount(), before);
        await assertStateTrue(cri, pve);
      },
    );

    await t.step(
      "a failing start task: StartContainer fails with it, the container EXITED",
      async () => {
        const id = await create("start-fails");
        sim.faults.add({
          method: "POST",
          path: "/nodes/*/lxc/*/status/start",
          failTask: "startup for container failed",
          times: 1,
        });
        await rejectsWith(
          cri.runtime.StartContainer({ container_id: id }),
          status.INTERNAL,
          /startup for container failed/,
        );
        assert.equal(await stateOf(id), "CONTAINER_EXITED");
        await assertStateTrue(cri, pve);
      },
    );

    await t.step(
      "lock contention once is waited out; held throughout it is FAILED_PRECONDITION naming the lock",
      async () => {
        const once = await create("locked-once");
        sim.faults.add({
          method: "POST",
          path: "/nodes/*/lxc/*/status/start",
          lockTimeout: true,
          times: 1,
        });
        await cri.runtime.StartContainer({ container_id: once });
        assert.equal(await stateOf(once), "CONTAINER_RUNNING");
        const held = await create("locked");
        const rule = sim.faults.add({
          method: "POST",
          path: "/nodes/*/lxc/*/status/start",
          lockTimeout: true,
        });
        await rejectsWith(
          cri.runtime.StartContainer({ container_id: held }),
          status.FAILED_PRECONDITION,
          /can't lock file '.*pve-config-\d+\.lock' - got timeout/,
        );
        sim.faults.remove(rule);
        assert.equal(await stateOf(held), "CONTAINER_EXITED");
        await assertStateTrue(cri, pve);
      },
    );

    await t.step(
      "a 30 s slow start: DEADLINE_EXCEEDED at the call's deadline, then the start completes behind it",
      async () => {
        const id = await create("slow");
        sim.faults.add({
          method: "POST",
          path: "/nodes/*/lxc/*/status/start",
          latencyMs: 30_000,
          times: 1,
        });
        await rejectsWith(
          cri.runtime.StartContainer({ container_id: id }, { deadlineMs: 2_000 }),
          status.DEADLINE_EXCEEDED,
          /deadline/i,
        );
        // Meanwhile the server answers others, and the container is not half started.
        assert.equal(await stateOf(id), "CONTAINER_CREATED");
        // The kubelet's retry joins the start in flight rather than sending another.
        await cri.runtime.StartContainer({ container_id: id }, { deadlineMs: 60_000 });
        assert.equal(await stateOf(id), "CONTAINER_RUNNING");
        await assertStateTrue(cri, pve);
      },
    );

    await t.step(
      "a restarted simulator: a stop sent while it is down completes once it is back",
      async () => {
        const id = await create("restart");
        await cri.runtime.StartContainer({ container_id: id });
        await sim.close();
        const stopping = cri.runtime.StopContainer({ container_id: id, timeout: 0 }, {
          deadlineMs: 60_000,
        });
        // The stop's request met the closed port and is being retried.
        await until(
          "a request retried while Proxmox is down",
          () => server.stderr().includes("proxmox unreachable, retried") || undefined,
        );
        const requests: RequestRecord[] = [];
        sim = await startSimulator({ stateDir: simDir, port, onRequest: (r) => requests.push(r) });
        await stopping;
        assert.ok(
          requests.some((r) => r.method === "POST" && /\/status\/(stop|shutdown)$/.test(r.path)),
          "the stop reached the restarted simulator",
        );
        assert.equal(await stateOf(id), "CONTAINER_EXITED");
        await assertStateTrue(cri, pve);
      },
    );
  } finally {
    cri.close();
    pve.close();
    await server.stop();
    await sim.close();
  }
}
