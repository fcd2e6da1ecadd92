/**
 * The whole CRI lifecycle over the real socket, against pve-cri on `--backend proxmox` (with
 * the node stand-ins: this test is about the CRI surface and the Proxmox calls; real
 * processes are lxc_containers_test.ts's) pointed at a simulator this test runs (so it can look at the CTs the way an operator
 * would in the Proxmox UI). Requests are shaped as crictl sends them.
 */
import assert from "node:assert/strict";
import {
  clientOptionsFromConfig,
  createProxmoxClient,
  writeProxmoxConfig,
} from "../../adapters/proxmox/mod.ts";
import {
  type RequestRecord,
  simulatorConfig,
  startSimulator,
} from "../../adapters/proxmox/sim/mod.ts";
import { connect, type CriClient, type CriMessage, status } from "../_support/cri_client.ts";
import { registryMissing, startRegistry } from "../_support/registry.ts";
import { startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { smallImage } from "../_support/test_image.ts";

const podConfig = (name: string, labels: Record<string, string> = {}) => ({
  metadata: { name, uid: `${name}-0001`, namespace: "e2e", attempt: 0 },
  hostname: name,
  log_directory: `/var/log/pods/e2e_${name}`,
  labels: { app: name, ...labels },
  annotations: { "note/ü": 'ünïcode, "quotes" and\nnewlines' },
  linux: {
    security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
  },
});

/** The registry this test pushes its image to; set once it runs. */
let imageRef = "";

const containerConfig = (name: string, extra: CriMessage = {}) => ({
  metadata: { name, attempt: 0 },
  image: { image: imageRef },
  command: ["/bin/sh", "-c", "sleep 3600"],
  // KeyValue.value is bytes in CRI v1.
  envs: [
    { key: "SECRET_TOKEN", value: new TextEncoder().encode("s3cr3t-v4lue") },
    { key: "MODE", value: new TextEncoder().encode("e2e") },
  ],
  labels: { tier: name },
  annotations: { "io.kubernetes.container.hash": "abc123" },
  log_path: `${name}/0.log`,
  linux: { resources: {} },
  ...extra,
});

async function rejectsWith(promise: Promise<unknown>, code: number, pattern?: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    const e = error as { code: number; details: string };
    assert.equal(e.code, code, `expected gRPC code ${code}, got ${e.code}: ${e.details}`);
    if (pattern) assert.match(e.details, pattern);
    return true;
  });
}

const missing = registryMissing();

Deno.test({
  name: `CRI lifecycle over the socket, with every filter and the errors the CRI defines${
    missing === undefined ? "" : ` (skipped: ${missing})`
  }`,
  ignore: missing !== undefined,
  fn: lifecycle,
});

async function lifecycle(t: Deno.TestContext) {
  using dir = tempDir();
  await using registry = await startRegistry();
  await registry.push("library/busybox", "1.36", smallImage());
  imageRef = `${registry.host}/library/busybox:1.36`;
  const requests: RequestRecord[] = [];
  const sim = await startSimulator({
    stateDir: `${dir.path}/sim`,
    onRequest: (r) => requests.push(r),
  });
  const config = simulatorConfig(sim);
  writeProxmoxConfig(`${dir.path}/pve.json`, config);
  const pve = createProxmoxClient(clientOptionsFromConfig(config));
  await using server = await startServer({
    dir: dir.path,
    backend: "proxmox",
    config: `${dir.path}/pve.json`,
    fakeNode: true,
  });
  const cri: CriClient = await connect(server.socket);
  try {
    await t.step("Version, Status and RuntimeConfig", async () => {
      const v = await cri.runtime.Version({ version: "v1" });
      assert.deepEqual(
        [v.runtime_name, v.runtime_api_version],
        ["pve-cri", "v1"],
      );
      const s = await cri.runtime.Status({ verbose: true });
      const conditions = Object.fromEntries(
        s.status.conditions.map((c: CriMessage) => [c.type, c.status]),
      );
      assert.deepEqual(conditions, { RuntimeReady: true, NetworkReady: true });
      assert.equal(typeof JSON.parse(s.info.info).sandboxes, "number", "verbose info is JSON");
      const rc = await cri.runtime.RuntimeConfig({});
      assert.equal(rc.linux.cgroup_driver, "CGROUPFS");
    });

    await t.step("images: absent, pulled, listed", async () => {
      const absent = await cri.image.ImageStatus({ image: { image: imageRef } });
      assert.equal(absent.image, null, "an absent image is not an error");
      const pulled = await cri.image.PullImage({ image: { image: imageRef } });
      assert.match(pulled.image_ref, /^sha256:[0-9a-f]{64}$/);
      const present = await cri.image.ImageStatus({ image: { image: imageRef } });
      assert.deepEqual(present.image.repo_tags, [imageRef]);
      assert.equal(typeof present.image.size, "string", "uint64 crosses as a string");
      const list = await cri.image.ListImages({});
      assert.equal(list.images.length, 1);
      await rejectsWith(
        cri.image.PullImage({ image: { image: "Not A Reference" } }),
        status.INVALID_ARGUMENT,
        /image\.image/,
      );
      const fs = await cri.image.ImageFsInfo({});
      assert.equal(fs.image_filesystems.length, 1);
    });

    let web = "";
    let db = "";
    await t.step("RunPodSandbox, duplicates, status and filters", async () => {
      web = (await cri.runtime.RunPodSandbox({
        config: podConfig("web", { role: "front" }),
        runtime_handler: "",
      })).pod_sandbox_id;
      db = (await cri.runtime.RunPodSandbox({
        config: podConfig("db", { role: "back" }),
        runtime_handler: "",
      })).pod_sandbox_id;
      assert.match(web, /^[0-9a-f]{64}$/);
      await rejectsWith(
        cri.runtime.RunPodSandbox({ config: podConfig("web"), runtime_handler: "" }),
        status.ALREADY_EXISTS,
        new RegExp(web),
      );
      const st = await cri.runtime.PodSandboxStatus({
        pod_sandbox_id: web.slice(0, 12),
        verbose: true,
      });
      assert.equal(st.status.id, web, "a unique prefix is accepted");
      assert.equal(st.status.state, "SANDBOX_READY");
      assert.match(st.status.network.ip, /^10\.88\.\d+\.\d+$/);
      assert.deepEqual(
        st.status.annotations,
        podConfig("web").annotations,
        "annotations round-trip",
      );
      const info = JSON.parse(st.info.info);
      assert.equal(info.state, "ready");
      assert.equal(typeof info.events, "number");
      assert.deepEqual(info.vmids, []);
      assert.match(st.status.created_at, /^\d{19}$/, "int64 ns as a string");

      const ids = async (filter: CriMessage) =>
        (await cri.runtime.ListPodSandbox({ filter })).items.map((i: CriMessage) => i.id).sort();
      assert.deepEqual(await ids(null), [web, db].sort());
      assert.deepEqual(await ids({ id: db.slice(0, 10) }), [db]);
      assert.deepEqual(await ids({ label_selector: { role: "front" } }), [web]);
      assert.deepEqual(await ids({ state: { state: "SANDBOX_NOTREADY" } }), []);
    });

    let app = "";
    await t.step("CreateContainer makes a tagged CT with the command and env set", async () => {
      app = (await cri.runtime.CreateContainer({
        pod_sandbox_id: web,
        config: containerConfig("app"),
        sandbox_config: podConfig("web"),
      })).container_id;
      const st = await cri.runtime.ContainerStatus({ container_id: app, verbose: true });
      assert.equal(st.status.state, "CONTAINER_CREATED");
      // The kubelet reads the log from here: the pod's log directory joined with the config's
      // relative path, as containerd and CRI-O answer it.
      assert.equal(st.status.log_path, "/var/log/pods/e2e_web/app/0.log");
      assert.deepEqual(st.status.labels, { tier: "app" });
      const vmid = JSON.parse(st.info.info).vmid as number;
      const ct = await pve.ctConfig({ vmid });
      assert.deepEqual(ct.tags!.split(";").sort(), ["e2e", "pve-cri"]);
      const identity = JSON.parse(ct.description!)["pve-cri"];
      assert.deepEqual(
        [
          identity.containerId,
          identity.sandboxId,
          identity.podUid,
          identity.podName,
          identity.podNamespace,
          identity.attempt,
        ],
        [app, web, "web-0001", "web", "e2e", 0],
      );
      assert.equal(ct.entrypoint, "/bin/sh -c 'sleep 3600'");
      assert.match(ct.env!, /SECRET_TOKEN=s3cr3t-v4lue/);
      const put = requests.find((r) =>
        r.method === "PUT" && r.path === `/nodes/${sim.node}/lxc/${vmid}/config`
      );
      assert.ok(put, "command and env are set with PUT config after the create task");
      await rejectsWith(
        cri.runtime.CreateContainer({
          pod_sandbox_id: web,
          config: containerConfig("app"),
          sandbox_config: podConfig("web"),
        }),
        status.ALREADY_EXISTS,
        new RegExp(app),
      );
    });

    await t.step("StartContainer, ListContainers filters, stats", async () => {
      await cri.runtime.StartContainer({ container_id: app.slice(0, 8) });
      const st = await cri.runtime.ContainerStatus({ container_id: app });
      assert.equal(st.status.state, "CONTAINER_RUNNING");
      assert.notEqual(st.status.started_at, "0");
      const other = (await cri.runtime.CreateContainer({
        pod_sandbox_id: db,
        config: containerConfig("store"),
        sandbox_config: podConfig("db"),
      })).container_id;
      const ids = async (filter: CriMessage) =>
        (await cri.runtime.ListContainers({ filter })).containers.map((c: CriMessage) => c.id)
          .sort();
      assert.deepEqual(await ids(null), [app, other].sort());
      assert.deepEqual(await ids({ id: app.slice(0, 9) }), [app]);
      assert.deepEqual(await ids({ pod_sandbox_id: db.slice(0, 9) }), [other]);
      assert.deepEqual(await ids({ state: { state: "CONTAINER_RUNNING" } }), [app]);
      assert.deepEqual(await ids({ state: { state: "CONTAINER_CREATED" } }), [other]);
      assert.deepEqual(await ids({ label_selector: { tier: "store" } }), [other]);

      const stats = await cri.runtime.ContainerStats({ container_id: app });
      assert.equal(stats.stats.attributes.id, app);
      assert.match(stats.stats.cpu.usage_core_nano_seconds.value, /^\d+$/);
      const all = await cri.runtime.ListContainerStats({ filter: { pod_sandbox_id: web } });
      assert.deepEqual(all.stats.map((s: CriMessage) => s.attributes.id), [app]);
      const pod = await cri.runtime.PodSandboxStats({ pod_sandbox_id: web });
      assert.deepEqual(pod.stats.linux.containers.map((c: CriMessage) => c.attributes.id), [app]);
      const pods = await cri.runtime.ListPodSandboxStats({
        filter: { label_selector: { role: "back" } },
      });
      assert.deepEqual(pods.stats.map((s: CriMessage) => s.attributes.id), [db]);
      await cri.runtime.RemoveContainer({ container_id: other });
    });

    await t.step(
      "UpdateContainerResources changes the CT's limits; a cpuset is refused",
      async () => {
        await cri.runtime.UpdateContainerResources({
          container_id: app,
          linux: {
            memory_limit_in_bytes: String(256 * 1024 * 1024 + 1),
            cpu_quota: "50000",
            cpu_period: "100000",
            cpu_shares: "512",
          },
        });
        const vmid = JSON.parse(
          (await cri.runtime.ContainerStatus({ container_id: app, verbose: true })).info.info,
        ).vmid;
        const ct = await pve.ctConfig({ vmid });
        assert.deepEqual([ct.memory, Number(ct.cpulimit), ct.cpuunits], [257, 0.5, 20]);
        await rejectsWith(
          cri.runtime.UpdateContainerResources({
            container_id: app,
            linux: { cpuset_cpus: "0-1" },
          }),
          status.INVALID_ARGUMENT,
          /linux\.cpuset_cpus/,
        );
      },
    );

    await t.step("GetContainerEvents streams created, started, stopped, deleted", async () => {
      using events = cri.runtime.GetContainerEvents({});
      await new Promise((resolve) => setTimeout(resolve, 100));
      const side = (await cri.runtime.CreateContainer({
        pod_sandbox_id: web,
        config: containerConfig("side"),
        sandbox_config: podConfig("web"),
      })).container_id;
      await cri.runtime.StartContainer({ container_id: side });
      await cri.runtime.StopContainer({ container_id: side, timeout: "5" });
      const stopped = await cri.runtime.ContainerStatus({ container_id: side });
      assert.equal(stopped.status.state, "CONTAINER_EXITED");
      assert.equal(stopped.status.exit_code, 143, "SIGTERM within the grace period");
      assert.ok(
        requests.some((r) => r.method === "POST" && r.path.endsWith("/status/shutdown")),
        "a grace period uses shutdown (with forceStop)",
      );
      await cri.runtime.RemoveContainer({ container_id: side });
      const seen: string[] = [];
      while (seen.length < 4) {
        const event = await events.next({ timeoutMs: 5000 });
        if (event.container_id === side) seen.push(event.container_event_type);
      }
      assert.deepEqual(seen, [
        "CONTAINER_CREATED_EVENT",
        "CONTAINER_STARTED_EVENT",
        "CONTAINER_STOPPED_EVENT",
        "CONTAINER_DELETED_EVENT",
      ]);
    });

    await t.step(
      "StopContainer with timeout 0 kills; removed things stay removed without errors",
      async () => {
        await cri.runtime.StopContainer({ container_id: app, timeout: "0" });
        const st = await cri.runtime.ContainerStatus({ container_id: app });
        assert.equal(st.status.exit_code, 137);
        assert.match(st.status.finished_at, /^\d{19}$/);
        await cri.runtime.RemoveContainer({ container_id: app });
        await rejectsWith(cri.runtime.ContainerStatus({ container_id: app }), status.NOT_FOUND);
        await cri.runtime.RemoveContainer({ container_id: app });
        await cri.runtime.StopContainer({ container_id: app, timeout: "0" });
      },
    );

    await t.step("RemovePodSandbox removes its running containers and their CTs", async () => {
      const last = (await cri.runtime.CreateContainer({
        pod_sandbox_id: db,
        config: containerConfig("last"),
        sandbox_config: podConfig("db"),
      })).container_id;
      await cri.runtime.StartContainer({ container_id: last });
      const vmid = JSON.parse(
        (await cri.runtime.ContainerStatus({ container_id: last, verbose: true })).info.info,
      ).vmid;
      await cri.runtime.RemovePodSandbox({ pod_sandbox_id: db });
      await rejectsWith(cri.runtime.ContainerStatus({ container_id: last }), status.NOT_FOUND);
      await assert.rejects(pve.ctStatus({ vmid }), /does not exist/);
      await cri.runtime.StopPodSandbox({ pod_sandbox_id: web });
      const st = await cri.runtime.PodSandboxStatus({ pod_sandbox_id: web });
      assert.equal(st.status.state, "SANDBOX_NOTREADY");
      await rejectsWith(
        cri.runtime.CreateContainer({
          pod_sandbox_id: web,
          config: containerConfig("late"),
          sandbox_config: podConfig("web"),
        }),
        status.FAILED_PRECONDITION,
        /not ready/,
      );
      await cri.runtime.RemovePodSandbox({ pod_sandbox_id: web });
      await cri.runtime.RemovePodSandbox({ pod_sandbox_id: web });
      await cri.runtime.StopPodSandbox({ pod_sandbox_id: web });
      assert.deepEqual((await cri.runtime.ListPodSandbox({})).items, []);
      await cri.image.RemoveImage({ image: { image: imageRef } });
      await cri.image.RemoveImage({ image: { image: imageRef } });
      assert.deepEqual((await cri.image.ListImages({})).images, []);
    });

    await t.step("unknown ids, malformed requests and unimplemented methods", async () => {
      const unknown = "f".repeat(64);
      await rejectsWith(
        cri.runtime.PodSandboxStatus({ pod_sandbox_id: unknown }),
        status.NOT_FOUND,
      );
      await rejectsWith(cri.runtime.ContainerStatus({ container_id: unknown }), status.NOT_FOUND);
      await rejectsWith(cri.runtime.StartContainer({ container_id: unknown }), status.NOT_FOUND);
      await rejectsWith(
        cri.runtime.CreateContainer({ pod_sandbox_id: unknown, config: containerConfig("x") }),
        status.NOT_FOUND,
      );
      await rejectsWith(
        cri.runtime.RunPodSandbox({ config: { metadata: { name: "", uid: "u", namespace: "n" } } }),
        status.INVALID_ARGUMENT,
        /config\.metadata\.name/,
      );
      await rejectsWith(cri.runtime.RunPodSandbox({}), status.INVALID_ARGUMENT, /config/);
      await rejectsWith(
        cri.runtime.RunPodSandbox({ config: podConfig("x"), runtime_handler: "" }).then((
          r: CriMessage,
        ) =>
          cri.runtime.CreateContainer({
            pod_sandbox_id: r.pod_sandbox_id,
            config: { metadata: { name: "c" } },
          })
        ),
        status.INVALID_ARGUMENT,
        /config\.image/,
      );
      await rejectsWith(
        cri.runtime.PodSandboxStatus({ pod_sandbox_id: "" }),
        status.INVALID_ARGUMENT,
        /pod_sandbox_id/,
      );
      // The CRI: a run_as_group without a user MUST be an error, for pods and containers.
      const groupOnly = { run_as_group: { value: "1000" } };
      await rejectsWith(
        cri.runtime.RunPodSandbox({
          config: { ...podConfig("grouponly"), linux: { security_context: groupOnly } },
        }),
        status.INVALID_ARGUMENT,
        /config\.linux\.security_context\.run_as_group is set without run_as_user/,
      );
      const pod = (await cri.runtime.ListPodSandbox({})).items[0].id;
      await rejectsWith(
        cri.runtime.CreateContainer({
          pod_sandbox_id: pod,
          config: { ...containerConfig("grouponly"), linux: { security_context: groupOnly } },
        }),
        status.INVALID_ARGUMENT,
        /run_as_group is set without run_as_user or run_as_username/,
      );
      await cri.image.PullImage({ image: { image: imageRef } });
      const named = await cri.runtime.CreateContainer({
        pod_sandbox_id: pod,
        config: {
          ...containerConfig("named"),
          linux: { security_context: { ...groupOnly, run_as_username: "app" } },
        },
      });
      assert.match(named.container_id, /^[0-9a-f]{64}$/, "a user name is a user too");
      await rejectsWith(
        cri.runtime.ExecSync({ container_id: unknown, cmd: ["true"] }),
        status.NOT_FOUND,
        /not found/,
      );
      await rejectsWith(
        cri.runtime.Attach({ container_id: unknown }),
        status.UNIMPLEMENTED,
        /Attach/,
      );
    });
  } finally {
    cri.close();
    pve.close();
    const { code } = await server.stop("SIGTERM");
    assert.equal(code, 0);
    assert.doesNotMatch(server.stderr(), /s3cr3t-v4lue/, "env values never reach a log");
    await sim.close();
  }
}
