/**
 * Reconciliation against what Proxmox and the node really have: orphan CTs of pve-cri's go
 * after their grace period, CTs that are not pve-cri's are never touched, a vanished or
 * diverging CT is reported, and node state no stream knows is released.
 */
import assert from "node:assert/strict";
import { FakeNode } from "../../adapters/node/fake_node.ts";
import { LxcNode } from "../../adapters/node/lxc_node.ts";
import { silentLogger } from "../../lib/log.ts";
import { databasePath } from "../../lib/paths.ts";
import { missingNodeTools, openRuntime } from "../../runtime/open_runtime.ts";
import { runTool } from "../../adapters/node/run_tool.ts";
import type { SandboxContext } from "../../machines/sandbox_context.ts";
import { bridgeNetwork, cniBinDirs } from "../_support/cni_networks.ts";
import { CniNetwork } from "../../adapters/cni/cni_network.ts";
import { ctDescription } from "../../runtime/ct_identity.ts";
import { type Drift, Reconciler } from "../../runtime/reconciler.ts";
import { containerSpec, sandboxSpec } from "../_support/specs.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { testImageName, writeArchive } from "../_support/test_image.ts";

const call = { meta: { method: "test" } };

async function openMemoryRuntime(dir: string) {
  const rt = await openRuntime({
    stateDir: `${dir}/state`,
    backend: "memory",
    log: silentLogger,
    version: "test",
  });
  await rt.runtime.importImage(writeArchive(dir), call, { name: testImageName });
  return rt;
}

const about = (drift: Drift[], subject: string) => drift.filter((d) => d.subject === subject);

Deno.test("reconciliation: an orphan CT of pve-cri's goes after its grace, others are left; a vanished or stopped CT is reported", async () => {
  using dir = tempDir();
  const rt = await openMemoryRuntime(dir.path);
  try {
    const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
    const gone = await rt.runtime.createContainer(pod.id, containerSpec("gone"), call);
    const runs = await rt.runtime.createContainer(pod.id, containerSpec("runs"), call);
    await rt.runtime.startContainer(runs.id, call);
    const template = (await rt.runtime.images())[0]!.volid!;
    const make = async (vmid: number, extra: Record<string, unknown>) =>
      await rt.api.waitForTask(
        await rt.api.createCt({ vmid, ostemplate: template, rootfs: "local-lvm:1", ...extra }),
      );
    // Behind pve-cri's back: a CT of its own that no stream knows (an old backup of the log),
    // one with its tag but no identity, one of somebody else's; a CT destroyed, one stopped.
    const identity = {
      containerId: "f".repeat(64),
      sandboxId: pod.id,
      podUid: "uid",
      podName: "web",
      podNamespace: "default",
      name: "lost",
      attempt: 0,
    };
    await make(900, { tags: ["pve-cri"], description: ctDescription(identity) });
    await make(901, { tags: ["pve-cri"], description: "made by hand" });
    await make(902, { description: ctDescription(identity) });
    await rt.api.waitForTask(await rt.api.destroyCt({ vmid: gone.vmid!, force: true }));
    await rt.api.waitForTask(await rt.api.stopCt({ vmid: runs.vmid! }));

    let now = 1_000_000;
    const reconciler = new Reconciler({
      api: rt.api,
      registry: rt.registry,
      node: new FakeNode(),
      log: silentLogger,
      orphanGraceMs: 60_000,
      now: () => now,
    });
    const seen = await reconciler.run({ repair: true });
    assert.match(about(seen, "900")[0]!.detail, /lost .*no stream knows; destroyed after 60 s/);
    assert.equal(about(seen, "900")[0]!.repaired, undefined, "not within the grace period");
    assert.match(about(seen, "901")[0]!.detail, /names no container: left alone/);
    assert.deepEqual(about(seen, "902"), [], "not tagged as pve-cri's: not even looked at");
    assert.deepEqual(about(seen, String(gone.vmid)).map((d) => d.kind), ["missing CT"]);
    assert.deepEqual(about(seen, String(runs.vmid)).map((d) => [d.kind, d.detail]), [
      ["CT state", `container ${runs.id} is running, its CT is stopped`],
    ]);

    now += 60_000;
    const report = await reconciler.run({ repair: false });
    assert.equal(about(report, "900")[0]!.repaired, undefined, "a report changes nothing");
    assert.equal((await rt.api.ctStatus({ vmid: 900 })).status, "stopped");

    const repaired = await reconciler.run({ repair: true });
    assert.equal(about(repaired, "900")[0]!.repaired, "destroyed");
    await assert.rejects(rt.api.ctStatus({ vmid: 900 }), /does not exist/);
    for (const vmid of [901, 902]) {
      assert.equal((await rt.api.ctStatus({ vmid })).status, "stopped", `CT ${vmid} is kept`);
    }
    assert.deepEqual(about(await reconciler.run({ repair: true }), "900"), []);
  } finally {
    await rt.close();
  }
});

const whyNotRoot = Deno.uid() !== 0 ? "needs root" : undefined;
const whyNoLxc = whyNotRoot ?? missingNodeTools();

Deno.test({
  name: `reconciliation: node state of a pod or container no stream knows is released${
    whyNotRoot === undefined ? "" : ` (skipped: ${whyNotRoot})`
  }`,
  ignore: whyNotRoot !== undefined,
  async fn() {
    using dir = tempDir();
    const rt = await openMemoryRuntime(dir.path);
    const node = new LxcNode({
      dir: `${dir.path}/node`,
      lxcpath: `${dir.path}/lxc`,
      pveConfigDir: `${dir.path}/pve`,
      log: silentLogger,
    });
    try {
      // What a crash of an older pve-cri, or a restored log, leaves: pinned namespaces and pod
      // files, an include file and an exit record, of streams this log does not have.
      const pinned = await node.pinNamespaces("lost-pod", {
        hostname: "lost",
        dns: null,
        hostNetwork: false,
        hostIpc: false,
        sysctls: {},
      });
      Deno.writeTextFileSync(`${dir.path}/node/includes/lost-ctr.conf`, "lxc.init.cmd = x\n");
      Deno.writeTextFileSync(`${dir.path}/node/exited/lost-ctr`, "0");
      const reconciler = new Reconciler({
        api: rt.api,
        registry: rt.registry,
        node,
        log: silentLogger,
        orphanGraceMs: 0,
      });
      const drift = await reconciler.run({ repair: true });
      assert.deepEqual(
        drift.map((d) => [d.kind, d.subject, d.repaired]).sort(),
        [
          ["leaked container state", "lost-ctr", "released"],
          ["leaked pod state", "lost-pod", "unpinned and removed"],
        ],
      );
      const mounts = Deno.readTextFileSync("/proc/self/mountinfo");
      for (const path of Object.values(pinned.paths)) assert.ok(!mounts.includes(path), path);
      assert.deepEqual(node.podsOnNode(), []);
      assert.deepEqual(node.processes.containersOnNode(), []);
      assert.deepEqual(await reconciler.run({ repair: true }), []);
    } finally {
      node.close();
      await rt.close();
    }
  },
});

Deno.test({
  name: `reconciliation: a CNI attachment of a sandbox no stream knows is deleted, its IP released${
    whyNoLxc === undefined ? "" : ` (skipped: ${whyNoLxc})`
  }`,
  ignore: whyNoLxc !== undefined,
  async fn() {
    using dir = tempDir();
    const rt = await openMemoryRuntime(dir.path);
    const node = new LxcNode({
      dir: `${dir.path}/node`,
      lxcpath: `${dir.path}/lxc`,
      pveConfigDir: `${dir.path}/pve`,
      log: silentLogger,
    });
    const bridge = `pcrk${crypto.randomUUID().slice(0, 6)}`;
    const confDir = `${dir.path}/net.d`;
    Deno.mkdirSync(confDir);
    Deno.writeTextFileSync(
      `${confDir}/10-leak.conflist`,
      JSON.stringify(
        bridgeNetwork({
          name: "leak",
          bridge,
          subnet: "10.88.233.0/24",
          dataDir: `${dir.path}/ipam`,
        }),
      ),
    );
    const cni = new CniNetwork({ confDir, binDirs: cniBinDirs, cacheDir: `${dir.path}/cni-cache` });
    try {
      // What a crash of an older pve-cri with a lost log leaves: a pod on the network.
      const pinned = await node.pinNamespaces("lost-pod", {
        hostname: "lost",
        dns: null,
        hostNetwork: false,
        hostIpc: false,
        sysctls: {},
      });
      const [attachment] = cni.networksFor(false);
      await cni.add({ ...attachment!, sandboxId: "lost-pod", netns: pinned.paths.net! });
      const ips = () =>
        [...Deno.readDirSync(`${dir.path}/ipam/leak`)].map((e) => e.name)
          .filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n));
      assert.equal(ips().length, 1, "an IP is allocated");
      const reconciler = new Reconciler({
        api: rt.api,
        registry: rt.registry,
        node,
        cni,
        log: silentLogger,
        orphanGraceMs: 0,
      });
      const report = await reconciler.run({ repair: false });
      assert.ok(report.some((d) => d.kind === "leaked pod network" && d.subject === "lost-pod"));
      assert.equal(ips().length, 1, "a report changes nothing");
      const drift = await reconciler.run({ repair: true });
      const leak = drift.find((d) => d.kind === "leaked pod network")!;
      assert.equal(leak.repaired, "CNI DEL with the cached result");
      assert.deepEqual(ips(), [], "its IP is back in the pool");
      assert.deepEqual(cni.cachedAttachments(), []);
      assert.deepEqual(await reconciler.run({ repair: true }), []);
    } finally {
      node.close();
      await rt.close();
      await runTool("ip", ["link", "del", bridge]).catch(() => {});
    }
  },
});

Deno.test({
  name: `reconciliation: a ready sandbox whose pinned namespaces are gone turns NotReady${
    whyNotRoot === undefined ? "" : ` (skipped: ${whyNotRoot})`
  }`,
  ignore: whyNotRoot !== undefined,
  async fn() {
    using dir = tempDir();
    const rt = await openMemoryRuntime(dir.path);
    // The node a real backend has: it finds none of the memory stand-in's pinned namespaces.
    const node = new LxcNode({
      dir: `${dir.path}/node`,
      lxcpath: `${dir.path}/lxc`,
      pveConfigDir: `${dir.path}/pve`,
      log: silentLogger,
    });
    try {
      const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
      const reconciler = new Reconciler({
        api: rt.api,
        registry: rt.registry,
        node,
        log: silentLogger,
        orphanGraceMs: 0,
      });
      const report = await reconciler.run({ repair: false });
      assert.deepEqual(report.map((d) => [d.kind, d.subject]), [["lost namespaces", pod.id]]);
      assert.equal(rt.runtime.sandbox(pod.id)!.state, "SANDBOX_READY", "a report changes nothing");
      const [lost] = await reconciler.run({ repair: true });
      assert.equal(lost!.repaired, "sandbox NotReady");
      assert.match(lost!.detail, /net, ipc, uts namespace\(s\) gone/);
      assert.equal(rt.runtime.sandbox(pod.id)!.state, "SANDBOX_NOTREADY");
      await assert.rejects(
        rt.runtime.createContainer(pod.id, containerSpec("late"), call),
        (e: Error & { code?: string }) => e.code === "FailedPrecondition",
      );
      assert.deepEqual(await reconciler.run({ repair: true }), [], "reported once");
      await rt.runtime.removePodSandbox(pod.id, call);
      assert.equal(rt.runtime.sandbox(pod.id), undefined);
    } finally {
      node.close();
      await rt.close();
    }
  },
});

/** Copies an SQLite log with its WAL files (those there are). */
function copyLog(from: string, to: string): void {
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      Deno.copyFileSync(from + suffix, to + suffix);
    } catch {
      // not there: nor in the copy
    }
  }
}

/** Puts a backup of the log in its place, as an operator restoring an old one would. */
function restoreLog(backup: string, database: string): void {
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      Deno.removeSync(database + suffix);
    } catch {
      // not there
    }
  }
  copyLog(backup, database);
}

Deno.test("reconciliation adopts the CTs of containers a log restored from an old backup lost: their state, config and name come back", async () => {
  using dir = tempDir();
  const stateDir = `${dir.path}/state`;
  const database = databasePath(stateDir);
  let rt = await openMemoryRuntime(dir.path);
  const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
  await rt.close();
  copyLog(database, `${dir.path}/backup.db`);

  rt = await openMemoryRuntime(dir.path);
  const runs = await rt.runtime.createContainer(
    pod.id,
    containerSpec("runs", { labels: { "io.kubernetes.container.name": "runs" } }),
    call,
  );
  await rt.runtime.startContainer(runs.id, call);
  const made = await rt.runtime.createContainer(pod.id, containerSpec("made"), call);
  const before = rt.runtime.container(runs.id)!;
  await rt.close();
  // The log goes back to the backup: it never heard of either container.
  restoreLog(`${dir.path}/backup.db`, database);

  rt = await openMemoryRuntime(dir.path);
  try {
    // The startup reconciliation adopts them (a pass asked for now may be the one that does).
    await rt.reconciler.run({ repair: true });
    for (const c of [runs, made]) {
      const history = rt.store.readStream(c.id).map((e) => e.type);
      assert.equal(history[0], "ContainerAdopted", "the log had lost it: its stream starts anew");
    }
    const adopted = rt.runtime.container(runs.id)!;
    assert.equal(adopted.state, "CONTAINER_RUNNING");
    assert.equal(adopted.vmid, runs.vmid);
    assert.equal(adopted.spec.name, "runs");
    assert.deepEqual(adopted.spec.labels, before.spec.labels);
    assert.deepEqual(adopted.spec.command, before.spec.command);
    assert.equal(adopted.logPath, before.logPath);
    assert.equal(adopted.createdAt, before.createdAt);
    assert.equal(rt.runtime.container(made.id)!.state, "CONTAINER_CREATED");
    assert.deepEqual(await rt.reconciler.run({ repair: false }), [], "nothing differs now");
    // The kubelet can stop and remove them as any other.
    await rt.runtime.stopContainer(runs.id, 0, call);
    assert.equal(rt.runtime.container(runs.id)!.state, "CONTAINER_EXITED");
    await rt.runtime.removePodSandbox(pod.id, call);
    for (const c of [runs, made]) {
      await assert.rejects(rt.api.ctStatus({ vmid: c.vmid! }), /does not exist/);
    }
  } finally {
    await rt.close();
  }
});

Deno.test("reconciliation adopts a pod the log lost with its containers: NotReady, named as before, its containers in it, and removable", async () => {
  using dir = tempDir();
  const stateDir = `${dir.path}/state`;
  const database = databasePath(stateDir);
  let rt = await openMemoryRuntime(dir.path);
  await rt.close();
  copyLog(database, `${dir.path}/backup.db`); // from before the pod existed
  rt = await openMemoryRuntime(dir.path);
  const pod = await rt.runtime.runPodSandbox(sandboxSpec("lost"), call);
  const runs = await rt.runtime.createContainer(pod.id, containerSpec("runs"), call);
  await rt.runtime.startContainer(runs.id, call);
  await rt.close();
  restoreLog(`${dir.path}/backup.db`, database);

  rt = await openMemoryRuntime(dir.path);
  try {
    await rt.reconciler.run({ repair: true });
    assert.deepEqual(rt.store.readStream(pod.id).map((e) => e.type), [
      "SandboxAdopted",
      "ContainerAdmitted",
    ]);
    const adopted = rt.runtime.sandbox(pod.id)!;
    assert.equal(adopted.state, "SANDBOX_NOTREADY");
    assert.deepEqual(adopted.spec.metadata, { ...sandboxSpec("lost").metadata, attempt: 0 });
    assert.equal(adopted.spec.labels["io.kubernetes.pod.uid"], sandboxSpec("lost").metadata.uid);
    assert.deepEqual(adopted.containerIds, [runs.id]);
    assert.equal(rt.runtime.container(runs.id)!.state, "CONTAINER_RUNNING");
    assert.deepEqual(await rt.reconciler.run({ repair: false }), [], "nothing differs now");
    // The kubelet replaces it: stop and remove take down its container and CT.
    await rt.runtime.stopPodSandbox(pod.id, call);
    await rt.runtime.removePodSandbox(pod.id, call);
    await assert.rejects(rt.api.ctStatus({ vmid: runs.vmid! }), /does not exist/);
  } finally {
    await rt.close();
  }
});

Deno.test({
  name: `reconciliation: a ready sandbox whose pod network interface is gone turns NotReady${
    whyNoLxc === undefined ? "" : ` (skipped: ${whyNoLxc})`
  }`,
  ignore: whyNoLxc !== undefined,
  async fn() {
    using dir = tempDir();
    // The real bridge and host-local plugins, on a bridge of the test's own.
    const bridge = `pcrl${crypto.randomUUID().slice(0, 6)}`;
    const confDir = `${dir.path}/net.d`;
    Deno.mkdirSync(confDir);
    Deno.writeTextFileSync(
      `${confDir}/10-lost.conflist`,
      JSON.stringify(
        bridgeNetwork({
          name: "lost",
          bridge,
          subnet: "10.88.232.0/24",
          dataDir: `${dir.path}/ipam`,
        }),
      ),
    );
    const rt = await openRuntime({
      stateDir: `${dir.path}/state`,
      backend: "lxc",
      cniConfDir: confDir,
      cniBinDirs,
      log: silentLogger,
      version: "test",
    });
    try {
      const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
      assert.deepEqual(await rt.reconciler.run({ repair: true }), [], "all there");
      const netns = (rt.registry.get(pod.id)!.state.context as SandboxContext).namespaces!.net!;
      // Behind pve-cri's back: the pod's interface is deleted.
      await runTool("nsenter", [`--net=${netns}`, "ip", "link", "del", "eth0"]);
      const report = await rt.reconciler.run({ repair: false });
      assert.deepEqual(report.map((d) => [d.kind, d.subject]), [["lost network", pod.id]]);
      assert.equal(rt.runtime.sandbox(pod.id)!.state, "SANDBOX_READY", "a report changes nothing");
      const [lost] = await rt.reconciler.run({ repair: true });
      assert.equal(lost!.repaired, "sandbox NotReady");
      assert.match(lost!.detail, /interface\(s\) eth0 gone/);
      assert.equal(rt.runtime.sandbox(pod.id)!.state, "SANDBOX_NOTREADY");
      assert.deepEqual(await rt.reconciler.run({ repair: true }), [], "reported once");
      // The kubelet stops and removes it; CNI DEL copes with the missing interface.
      await rt.runtime.stopPodSandbox(pod.id, call);
      await rt.runtime.removePodSandbox(pod.id, call);
      assert.equal(rt.runtime.sandbox(pod.id), undefined);
      assert.ok(!Deno.readTextFileSync("/proc/self/mountinfo").includes(netns), "unpinned");
    } finally {
      await rt.close();
      await runTool("ip", ["link", "del", bridge]).catch(() => {});
    }
  },
});
