/**
 * Real containers, end to end over the CRI socket: `deno task start --backend lxc` (the
 * embedded simulator with its LXC driver and the real node adapter) runs a pod of busybox
 * containers as LXC containers on this machine, in the pod's pinned namespaces, under conmon.
 * The test looks at what it made the way an operator would: the CT's cgroup, the CRI log
 * file, the processes and mounts left on the node.
 */
import assert from "node:assert/strict";
import { cgroupOf } from "../../adapters/node/cgroups.ts";
import { LxcTools } from "../../adapters/lxc/lxc_tools.ts";
import { ConmonSupervisor } from "../../adapters/node/conmon_supervisor.ts";
import { parentOf } from "../../adapters/lxc/proc.ts";
import { silentLogger } from "../../lib/log.ts";
import { sharesToWeight } from "../../lib/cpu_weight.ts";
import { readServerInfo } from "../../lib/state_dir_lock.ts";
import { pathExists } from "../../adapters/proxmox/sim/files.ts";
import { missingNodeTools } from "../../runtime/open_runtime.ts";
import { connect, type CriClient, type CriMessage } from "../_support/cri_client.ts";
import { busyboxImage, busyboxPath } from "../_support/oci_images.ts";
import { startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { seedImage } from "../_support/test_image.ts";
import { runTool } from "../../adapters/node/run_tool.ts";
import { until } from "../_support/until.ts";
import { bridgeNetwork, cniBinDirs } from "../_support/cni_networks.ts";

function whyNot(): string | undefined {
  if (Deno.uid() !== 0) return "needs root";
  if (busyboxPath === undefined) return "busybox-static is not installed";
  return missingNodeTools();
}

const why = whyNot();

/** A VMID range of this test's own: LXC names cgroups by VMID host-wide. */
function vmidRange(): [number, number] {
  const lower = 100_000 + Math.floor(Math.random() * 8000) * 100;
  return [lower, lower + 99];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function rejectsWith(promise: Promise<unknown>, code: number, pattern?: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    const e = error as { code: number; details: string };
    assert.equal(e.code, code, `expected gRPC code ${code}, got ${e.code}: ${e.details}`);
    if (pattern) assert.match(e.details, pattern);
    return true;
  });
}

/** `deno task sim --driver lxc` as its own process; resolves once it wrote its config file. */
async function startSimProcess(dir: string, configFile: string, vmids: [number, number]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../../adapters/proxmox/sim/main.ts", import.meta.url).pathname,
      "--listen",
      "127.0.0.1:0",
      "--state-dir",
      dir,
      "--driver",
      "lxc",
      "--vmids",
      `${vmids[0]}-${vmids[1]}`,
      "--config-out",
      configFile,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("url: ")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the simulator exited: ${out}`);
    out += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  return {
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/**
 * Hooks for the test's containers, chosen by annotation: one per OCI stage recording what it
 * saw (the stage, the state's status and pid, whether that pid runs, whether the app started,
 * the hostname it sees), a prestart hook and a poststop hook that fail.
 */
function writeRecordingHooks(hooksDir: string, hookbin: string): string {
  Deno.mkdirSync(hooksDir, { recursive: true });
  Deno.mkdirSync(hookbin, { recursive: true });
  // busybox applets by name: the same script runs on the node and in the container.
  Deno.writeTextFileSync(
    `${hookbin}/record.sh`,
    `#!/bin/sh
state=$(busybox cat)
pid=$(echo "$state" | busybox sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p')
status=$(echo "$state" | busybox sed -n 's/.*"status":"\\([a-z]*\\)".*/\\1/p')
alive=no; [ -n "$pid" ] && [ -d "/proc/$pid" ] && alive=yes
app=no; [ -e ${hookbin}/app-started ] && app=yes
echo "stage=$1 status=$status pid=\${pid:-none} alive=$alive app=$app host=$(busybox hostname)" >> ${hookbin}/log
`,
    { mode: 0o755 },
  );
  Deno.writeTextFileSync(
    `${hookbin}/fail.sh`,
    `#!/bin/sh\ntouch ${hookbin}/failed-$1\necho 'no GPU here' >&2\nexit 3\n`,
    { mode: 0o755 },
  );
  const stages = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
  ];
  stages.forEach((stage, i) => {
    Deno.writeTextFileSync(
      `${hooksDir}/1${i}-${stage}.json`,
      JSON.stringify({
        version: "1.0.0",
        hook: { path: `${hookbin}/record.sh`, args: ["record.sh", stage] },
        when: { annotations: { "^pve-cri\\.e2e/hooks$": "^record$" } },
        stages: [stage],
      }),
    );
  });
  for (const stage of ["prestart", "poststop"]) {
    Deno.writeTextFileSync(
      `${hooksDir}/2${stage === "poststop" ? 1 : 0}-fail.json`,
      JSON.stringify({
        version: "1.0.0",
        hook: { path: `${hookbin}/fail.sh`, args: ["fail.sh", stage] },
        when: { annotations: { "^pve-cri\\.e2e/hooks$": `^fail-${stage}$` } },
        stages: [stage],
      }),
    );
  }
  return hooksDir;
}

for (const backend of ["lxc", "proxmox"] as const) {
  const how = backend === "lxc"
    ? "--backend lxc (the embedded simulator's LXC driver)"
    : "--backend proxmox against `deno task sim --driver lxc` as its own process";
  Deno.test({
    name: `a pod of real LXC containers over the CRI on ${how}: namespaces, exec, logs, ` +
      `exits across a crash, stop codes, cleanup${why === undefined ? "" : ` (skipped: ${why})`}`,
    ignore: why !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: (t) => podLifecycle(t, backend),
  });
}

async function podLifecycle(t: Deno.TestContext, backend: "lxc" | "proxmox") {
  using dir = tempDir("pve-cri-lxc-");
  const stateDir = `${dir.path}/state`;
  const configFile = `${dir.path}/config.json`;
  const vmids = vmidRange();
  const simDir = backend === "lxc" ? `${stateDir}/proxmox` : `${dir.path}/sim`;
  await using _sim = backend === "proxmox"
    ? await startSimProcess(simDir, configFile, vmids)
    : undefined;
  // The pod network: the real bridge and host-local plugins, on a bridge of the test's own.
  const bridge = `pcri${crypto.randomUUID().slice(0, 6)}`;
  const subnet = `10.88.${100 + Math.floor(Math.random() * 150)}`;
  const cniConfDir = `${dir.path}/net.d`;
  Deno.mkdirSync(cniConfDir);
  Deno.writeTextFileSync(
    `${cniConfDir}/10-e2e.conflist`,
    // No subnet: the ranges come from the kubelet's pod CIDRs (UpdateRuntimeConfig).
    JSON.stringify(bridgeNetwork({ name: "e2e", bridge, dataDir: `${dir.path}/ipam` })),
  );
  // A bin dir of the test's own last, for a broken plugin.
  const cniBin = `${dir.path}/cni-bin`;
  Deno.mkdirSync(cniBin);
  const cni = { confDir: cniConfDir, binDirs: [...cniBinDirs, cniBin] };
  const hooksDir = writeRecordingHooks(`${dir.path}/hooks.d`, `${dir.path}/hookbin`);
  const settings = backend === "lxc"
    ? { lxc: { vmids } }
    : JSON.parse(Deno.readTextFileSync(configFile));
  Deno.writeTextFileSync(
    configFile,
    JSON.stringify({ ...settings, cni, hooks: { dirs: [hooksDir] } }),
    { mode: 0o600 },
  );
  await seedImage({ stateDir, backend, configFile, name: "busybox", image: busyboxImage() });
  const lxcpath = `${simDir}/lxc-containers`;
  const lxc = new LxcTools(lxcpath);
  const logDir = `${dir.path}/logs/e2e_pod-a`;
  const hostData = `${dir.path}/data`;
  Deno.mkdirSync(hostData);
  Deno.writeTextFileSync(`${hostData}/hello.txt`, "from the host\n");
  // A shared mount of the test's own, for propagation into the pod's containers.
  const shared = `${dir.path}/shared`;
  Deno.mkdirSync(`${shared}/sub`, { recursive: true });
  await runTool("mount", ["--bind", shared, shared]);
  await runTool("mount", ["--make-shared", shared]);
  const nodePortStart = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start");

  // With the inspection endpoint: a step asks for a reconciliation.
  const serve = () =>
    startServer({ dir: dir.path, stateDir, backend, config: configFile, http: "127.0.0.1:0" });
  let server = await serve();
  let cri: CriClient = await connect(server.socket);
  const ids: Record<string, string> = {};
  let podId = "";
  let hostPodId = "";
  try {
    // As the kubelet does once it knows the node's pod CIDRs (dual stack: IPv4 first).
    await rejectsWith(
      cri.runtime.UpdateRuntimeConfig({
        runtime_config: { network_config: { pod_cidr: "10.88.0.0/99" } },
      }),
      3,
      /runtime_config\.network_config\.pod_cidr: "10\.88\.0\.0\/99" is not a CIDR/,
    );
    await cri.runtime.UpdateRuntimeConfig({
      runtime_config: {
        network_config: { pod_cidr: `${subnet}.0/24,fd88:${subnet.split(".")[2]}::/64` },
      },
    });
    const status = await cri.runtime.Status({});
    const network = status.status.conditions.find((c: CriMessage) => c.type === "NetworkReady");
    assert.equal(network.status, true, network.message);

    const podConfig = {
      metadata: { name: "pod-a", uid: "pod-a-uid", namespace: "e2e", attempt: 0 },
      hostname: "pod-a",
      log_directory: logDir,
      dns_config: { servers: ["10.88.0.53"], searches: ["e2e.svc.cluster.local"], options: [] },
      linux: {
        sysctls: { "kernel.shmmni": "1234", "net.ipv4.ip_unprivileged_port_start": "80" },
        security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
      },
    };
    podId = (await cri.runtime.RunPodSandbox({ config: podConfig })).pod_sandbox_id;
    const nsDir = `${stateDir}/node/pods/${podId}/ns`;
    for (const kind of ["net", "ipc", "uts"]) {
      assert.ok(Deno.statSync(`${nsDir}/${kind}`).isFile, `${kind} namespace pinned`);
    }

    const create = async (name: string, command: string[], extra: CriMessage = {}) => {
      const { container_id } = await cri.runtime.CreateContainer({
        pod_sandbox_id: podId,
        config: {
          metadata: { name, attempt: 0 },
          image: { image: "busybox" },
          command,
          envs: [{ key: "GREETING", value: enc.encode("hi") }],
          log_path: `${name}/0.log`,
          linux: { resources: {} },
          ...extra,
        },
        sandbox_config: podConfig,
      });
      ids[name] = container_id;
      return container_id as string;
    };
    const exec = async (id: string, cmd: string[], timeout = 0) => {
      const r = await cri.runtime.ExecSync({ container_id: id, cmd, timeout });
      return { code: r.exit_code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
    };
    const statusOf = async (id: string) =>
      (await cri.runtime.ContainerStatus({ container_id: id })).status;
    const vmidOf = (id: string) => {
      for (const entry of Deno.readDirSync(`${simDir}/lxc`)) {
        const text = Deno.readTextFileSync(`${simDir}/lxc/${entry.name}`);
        if (text.includes(id)) return Number(entry.name.replace(".conf", ""));
      }
      throw new Error(`no CT for ${id}`);
    };

    await t.step(
      "two containers in the pod share its hostname, DNS, loopback and CNI address",
      async () => {
        const c1 = await create("c1", [
          "/bin/sh",
          "-c",
          "echo started; echo oops >&2; exec httpd -f -p 8080 -h /www",
        ], {
          working_dir: "/www",
          mounts: [{
            container_path: "/prop",
            host_path: shared,
            propagation: "PROPAGATION_PRIVATE",
          }],
        });
        const c2 = await create("c2", ["/bin/sleep", "3600"], {
          mounts: [
            { container_path: "/data", host_path: hostData, readonly: true },
            {
              container_path: "/prop",
              host_path: shared,
              propagation: "PROPAGATION_HOST_TO_CONTAINER",
            },
          ],
          linux: {
            resources: {
              memory_limit_in_bytes: 64 * 1024 * 1024,
              cpu_quota: 50_000,
              cpu_period: 100_000,
              cpu_shares: 512,
            },
          },
        });
        await cri.runtime.StartContainer({ container_id: c1 });
        await cri.runtime.StartContainer({ container_id: c2 });
        assert.equal((await statusOf(c1)).state, "CONTAINER_RUNNING");

        assert.deepEqual(await exec(c1, ["hostname"]), { code: 0, out: "pod-a\n", err: "" });
        const resolv = await exec(c2, ["cat", "/etc/resolv.conf"]);
        assert.match(resolv.out, /^nameserver 10\.88\.0\.53$/m);
        assert.match(resolv.out, /^search e2e\.svc\.cluster\.local$/m);
        assert.deepEqual(
          await exec(c2, ["sh", "-c", "echo out; echo err >&2; exit 3"]),
          { code: 3, out: "out\n", err: "err\n" },
        );
        assert.deepEqual(await exec(c1, ["pwd"]), { code: 0, out: "/www\n", err: "" });
        assert.equal((await exec(c1, ["sh", "-c", "echo $GREETING"])).out, "hi\n");
        const page = await until("c1 to serve", async () => {
          const r = await exec(c2, ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"]);
          return r.code === 0 ? r.out : undefined;
        });
        assert.equal(page, "hello from c1\n", "c2 reaches c1 over the pod's loopback");
        // The pod's own address from CNI: the node reaches c1 on it, through the bridge.
        const { status } = await cri.runtime.PodSandboxStatus({ pod_sandbox_id: podId });
        const podIp = status.network.ip;
        assert.match(podIp, new RegExp(`^${subnet.replaceAll(".", "\\.")}\\.\\d+$`));
        assert.deepEqual(
          status.network.additional_ips.map((a: CriMessage) => /^fd88:/.test(a.ip)),
          [true],
          "the IPv6 address comes second",
        );
        const response = await fetch(`http://${podIp}:8080/`);
        assert.equal(await response.text(), "hello from c1\n");
        // crictl inspectp: the CNI plugins (CHECK) find the attachment as they made it.
        const verbose = await cri.runtime.PodSandboxStatus({
          pod_sandbox_id: podId,
          verbose: true,
        });
        assert.deepEqual(JSON.parse(verbose.info.info).networkCheck, { "e2e/eth0": "ok" });
      },
    );

    await t.step(
      "a second pod reaches the first pod's IP; stopping it releases its IP, veth and CNI result",
      async () => {
        const podA = (await cri.runtime.PodSandboxStatus({ pod_sandbox_id: podId })).status;
        const podB = {
          metadata: { name: "pod-b", uid: "pod-b-uid", namespace: "e2e", attempt: 0 },
          hostname: "pod-b",
          log_directory: `${dir.path}/logs/e2e_pod-b`,
          linux: { security_context: { namespace_options: { network: "POD", pid: "CONTAINER" } } },
        };
        const podBId = (await cri.runtime.RunPodSandbox({ config: podB })).pod_sandbox_id;
        const podBIp = (await cri.runtime.PodSandboxStatus({ pod_sandbox_id: podBId })).status
          .network.ip;
        assert.notEqual(podBIp, podA.network.ip);
        const { container_id } = await cri.runtime.CreateContainer({
          pod_sandbox_id: podBId,
          config: {
            metadata: { name: "client", attempt: 0 },
            image: { image: "busybox" },
            command: ["/bin/sleep", "3600"],
            log_path: "client/0.log",
            linux: {},
          },
          sandbox_config: podB,
        });
        await cri.runtime.StartContainer({ container_id });
        const fetched = await exec(container_id, [
          "wget",
          "-q",
          "-O",
          "-",
          `http://${podA.network.ip}:8080/`,
        ]);
        assert.equal(fetched.out, "hello from c1\n", fetched.err);

        const cached = `${stateDir}/node/cni/results/e2e-${podBId}-eth0`;
        const hostVeth = (JSON.parse(Deno.readTextFileSync(cached)).result.interfaces as {
          name: string;
          sandbox?: string;
        }[]).find((i) => i.sandbox === undefined && i.name !== bridge)!.name;
        assert.ok(Deno.statSync(`${dir.path}/ipam/e2e/${podBIp}`).isFile, "IP allocated");
        await cri.runtime.StopPodSandbox({ pod_sandbox_id: podBId });
        assert.throws(() => Deno.statSync(`${dir.path}/ipam/e2e/${podBIp}`), "IP released");
        assert.throws(() => Deno.statSync(cached), "cached result removed");
        assert.throws(() => Deno.statSync(`/sys/class/net/${hostVeth}`), "veth removed");
        await cri.runtime.RemovePodSandbox({ pod_sandbox_id: podBId });
        await cri.runtime.RemovePodSandbox({ pod_sandbox_id: podBId }); // idempotent
      },
    );

    await t.step("a broken CNI plugin fails RunPodSandbox clearly and leaves nothing", async () => {
      // Lexically first, so it is the network now (read again without a restart).
      Deno.writeTextFileSync(
        `${cniBin}/broken`,
        `#!/bin/sh\n[ "$CNI_COMMAND" = VERSION ] && exec echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'\n` +
          `echo '{"cniVersion":"1.0.0","code":11,"msg":"no route to the fabric","details":"e2e"}'\nexit 1\n`,
        { mode: 0o755 },
      );
      Deno.writeTextFileSync(
        `${cniConfDir}/00-broken.conflist`,
        JSON.stringify({ cniVersion: "1.0.0", name: "broken", plugins: [{ type: "broken" }] }),
      );
      const pods = () => [...Deno.readDirSync(`${stateDir}/node/pods`)].length;
      const before = pods();
      try {
        const podC = {
          metadata: { name: "pod-c", uid: "pod-c-uid", namespace: "e2e", attempt: 0 },
          log_directory: `${dir.path}/logs/e2e_pod-c`,
          linux: { security_context: { namespace_options: { network: "POD", pid: "CONTAINER" } } },
        };
        await rejectsWith(
          cri.runtime.RunPodSandbox({ config: podC }),
          13,
          /CNI plugin broken ADD failed: no route to the fabric \(e2e\)/,
        );
        assert.equal(pods(), before, "no pod dir or pinned namespace left");
        assert.deepEqual(
          [...Deno.readDirSync(`${stateDir}/node/cni/results`)].filter((e) =>
            e.name.startsWith("broken-")
          ),
          [],
        );
      } finally {
        Deno.removeSync(`${cniConfDir}/00-broken.conflist`);
      }
      const ready = (await cri.runtime.Status({})).status.conditions
        .find((c: CriMessage) => c.type === "NetworkReady");
      assert.equal(ready.status, true, "back on the bridge network");
    });

    await t.step(
      "an ExecSync past its timeout is DEADLINE_EXCEEDED and leaves nothing",
      async () => {
        await rejectsWith(
          cri.runtime.ExecSync({ container_id: ids.c2, cmd: ["sleep", "31337"], timeout: 1 }),
          4,
          /timed out/,
        );
        const left = [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name))
          .filter((e) => {
            try {
              return Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes("31337");
            } catch {
              return false;
            }
          });
        assert.deepEqual(left, [], "the attached process tree is gone");
      },
    );

    await t.step("a readonly bind mount is visible and not writable", async () => {
      assert.equal((await exec(ids.c2!, ["cat", "/data/hello.txt"])).out, "from the host\n");
      const write = await exec(ids.c2!, ["touch", "/data/new"]);
      assert.notEqual(write.code, 0);
      assert.throws(() => Deno.statSync(`${hostData}/new`));
    });

    await t.step("a start resumed after a crash finds the process conmon runs", async () => {
      // What a startCt resumed after a crash does: the same start again, on the same node dirs.
      const supervisor = new ConmonSupervisor({
        dir: `${stateDir}/node`,
        podDir: (id) => `${stateDir}/node/pods/${id}`,
        lxc,
        pveConfigDir: `${simDir}/lxc`,
        log: silentLogger,
      });
      const monitors = () =>
        [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).filter((e) => {
          try {
            const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
            return cmd.startsWith("/usr/bin/conmon") && cmd.includes(ids.c2!);
          } catch {
            return false;
          }
        }).length;
      assert.equal(monitors(), 1);
      const again = await supervisor.start({
        containerId: ids.c2!,
        vmid: vmidOf(ids.c2!),
        argv: ["/bin/sleep", "3600"],
        env: [],
        user: "",
        workingDir: "",
        logPath: `${logDir}/c2/0.log`,
      });
      supervisor.close();
      assert.equal(monitors(), 1, "no second monitor, no second app");
      assert.equal(Deno.readTextFileSync(`/proc/${again.pid}/comm`).trim(), "sleep");
    });

    await t.step(
      "an app under an lxc-attach (as an older pve-cri left it) is signalled, not lxc-attach",
      async () => {
        const supervisor = new ConmonSupervisor({
          dir: `${stateDir}/node`,
          podDir: (id) => `${stateDir}/node/pods/${id}`,
          lxc,
          pveConfigDir: `${simDir}/lxc`,
          log: silentLogger,
        });
        const attach = new Deno.Command("lxc-attach", {
          args: ["-P", lxcpath, "-n", String(vmidOf(ids.c2!)), "--", "/bin/sleep", "3600"],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        const id = "older-pve-cri";
        try {
          Deno.mkdirSync(`${stateDir}/node/containers/${id}`, { recursive: true });
          Deno.writeTextFileSync(`${stateDir}/node/containers/${id}/attach.pid`, `${attach.pid}`);
          await until("the app under lxc-attach", () => {
            try {
              const children = Deno.readTextFileSync(
                `/proc/${attach.pid}/task/${attach.pid}/children`,
              );
              return children.trim().split(" ").some((pid) =>
                pid !== "" && Deno.readTextFileSync(`/proc/${pid}/comm`).trim() === "sleep"
              ) || undefined;
            } catch {
              return undefined;
            }
          });
          await supervisor.signal(id, "SIGTERM");
          // lxc-attach passes the app's status through: the app got the signal, not lxc-attach.
          const status = await attach.status;
          assert.equal(status.signal, null, "lxc-attach itself was not signalled");
          assert.equal(status.code, 143);
        } finally {
          supervisor.close();
          try {
            attach.kill("SIGKILL");
          } catch {
            // ended
          }
          await supervisor.release(id);
        }
      },
    );

    await t.step("the app is conmon's child: no lxc-attach stays behind a container", async () => {
      const { info } = await cri.runtime.ContainerStatus({ container_id: ids.c2, verbose: true });
      const pid = JSON.parse(info.info).pid as number;
      assert.equal(Deno.readTextFileSync(`/proc/${pid}/comm`).trim(), "sleep", "the app's pid");
      const parent = parentOf(pid)!;
      assert.equal(Deno.readTextFileSync(`/proc/${parent}/comm`).trim(), "conmon");
      assert.ok(Deno.readTextFileSync(`/proc/${parent}/cmdline`).includes(ids.c2!), "its own");
    });

    await t.step("the memory and CPU limits are in the CT's cgroup", async () => {
      const { pid } = await lxc.info(String(vmidOf(ids.c2!)));
      const cgroup = cgroupOf(pid!)!;
      const read = (dir: string | undefined, file: string) =>
        Deno.readTextFileSync(`${dir}/${file}`).trim();
      if (cgroup.v2) {
        assert.equal(read(cgroup.memory, "memory.max"), String(64 * 1024 * 1024));
        assert.equal(read(cgroup.cpu, "cpu.max"), "50000 100000");
        assert.equal(read(cgroup.cpu, "cpu.weight"), String(sharesToWeight(512n)));
      } else {
        assert.equal(read(cgroup.memory, "memory.limit_in_bytes"), String(64 * 1024 * 1024));
        // v1's cpu controller may be a hierarchy of its own, apart from cpuacct.
        const cpuPath = /^\d+:(?:[^:]*,)?cpu(?:,[^:]*)?:(.*)$/m
          .exec(Deno.readTextFileSync(`/proc/${pid}/cgroup`))![1];
        const cpu = `/sys/fs/cgroup/cpu${cpuPath}`;
        assert.equal(read(cpu, "cpu.cfs_quota_us"), "50000");
        assert.equal(read(cpu, "cpu.cfs_period_us"), "100000");
        // Through PVE 9's v2 weight and back: within the conversion's rounding of 512.
        const shares = Number(read(cpu, "cpu.shares"));
        assert.ok(Math.abs(shares - 512) < 512 * 0.05, `cpu.shares ${shares} ≈ 512`);
      }
    });

    await t.step("sysctls are set in the pod's namespaces, not the node's", async () => {
      assert.equal((await exec(ids.c2!, ["cat", "/proc/sys/kernel/shmmni"])).out, "1234\n");
      assert.equal(
        (await exec(ids.c1!, ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])).out,
        "80\n",
      );
      assert.equal(
        Deno.readTextFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
        nodePortStart,
      );
    });

    await t.step("a host mount reaches a HOST_TO_CONTAINER mount, not a private one", async () => {
      await runTool("mount", ["-t", "tmpfs", "-o", "size=1m", "pve-cri-e2e", `${shared}/sub`]);
      Deno.writeTextFileSync(`${shared}/sub/late.txt`, "mounted after start\n");
      assert.equal(
        (await exec(ids.c2!, ["cat", "/prop/sub/late.txt"])).out,
        "mounted after start\n",
      );
      assert.notEqual((await exec(ids.c1!, ["cat", "/prop/sub/late.txt"])).code, 0);
    });

    await t.step("stats come from the CT's cgroup and root filesystem", async () => {
      // Written before the first look: the root's usage is sampled every 10 s.
      const write = await exec(ids.c2!, ["dd", "if=/dev/zero", "of=/ballast", "bs=1M", "count=4"]);
      assert.equal(write.code, 0, write.err);
      const { stats } = await cri.runtime.ContainerStats({ container_id: ids.c2 });
      assert.equal(stats.attributes.id, ids.c2);
      assert.ok(BigInt(stats.cpu.usage_core_nano_seconds.value) > 0n, "CPU time");
      const workingSet = BigInt(stats.memory.working_set_bytes.value);
      assert.ok(workingSet > 0n, "a working set");
      assert.equal(
        BigInt(stats.memory.available_bytes.value),
        BigInt(64 * 1024 * 1024) - workingSet,
        "available is the limit less the working set",
      );
      assert.ok(BigInt(stats.writable_layer.used_bytes.value) >= 4n * 1024n * 1024n, "ballast");
      assert.ok(BigInt(stats.writable_layer.inodes_used.value) > 1n);
      assert.match(stats.writable_layer.fs_id.mountpoint, /\/rootfs$/);

      const listed = await cri.runtime.ListContainerStats({ filter: { pod_sandbox_id: podId } });
      const listedIds = listed.stats.map((s: CriMessage) => s.attributes.id);
      assert.ok(listedIds.includes(ids.c1) && listedIds.includes(ids.c2));
      const pod = (await cri.runtime.PodSandboxStats({ pod_sandbox_id: podId })).stats;
      const podCpu = BigInt(pod.linux.cpu.usage_core_nano_seconds.value);
      const perContainer = pod.linux.containers.map((c: CriMessage) =>
        BigInt(c.cpu.usage_core_nano_seconds.value)
      );
      assert.equal(podCpu, perContainer.reduce((a: bigint, b: bigint) => a + b, 0n));
      assert.ok(podCpu > 0n);
    });

    await t.step("the log file has stdout and stderr apart, in CRI format", async () => {
      const log = await until("c1's log", () => {
        try {
          const text = Deno.readTextFileSync(`${logDir}/c1/0.log`);
          return text.includes("oops") && text.includes("started") ? text : undefined;
        } catch {
          return undefined;
        }
      });
      assert.match(
        log,
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) stdout F started$/m,
      );
      assert.match(log, /^\S+ stderr F oops$/m);
    });

    await t.step(
      "ReopenContainerLog: the rotated log goes on in a new file, nothing lost",
      async () => {
        const talker = await create("talker", [
          "/bin/sh",
          "-c",
          "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.02; done",
        ]);
        await cri.runtime.StartContainer({ container_id: talker });
        const logFile = `${logDir}/talker/0.log`;
        const lines = (path: string) => {
          try {
            return Deno.readTextFileSync(path).trim().split("\n")
              .map((line) => /stdout F line (\d+)$/.exec(line)?.[1])
              .filter((n) => n !== undefined).map(Number);
          } catch {
            return [];
          }
        };
        await until("talker to log", () => lines(logFile).length >= 5 ? true : undefined);
        // As the kubelet rotates: rename, then ask the runtime to reopen.
        Deno.renameSync(logFile, `${logFile}.1`);
        await cri.runtime.ReopenContainerLog({ container_id: talker });
        await until("the new log file", () => lines(logFile).length >= 5 ? true : undefined);
        await cri.runtime.StopContainer({ container_id: talker, timeout: 0 });
        const all = [...lines(`${logFile}.1`), ...lines(logFile)];
        assert.deepEqual(all, [...all.keys()], "one sequence across both files");
        await rejectsWith(cri.runtime.ReopenContainerLog({ container_id: talker }), 9);
      },
    );

    await t.step("a container over its memory limit ends OOMKilled", async () => {
      // dd's one 96 MiB buffer, filled from /dev/zero, is more than the CT may hold.
      const hog = await create("hog", ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=96M"], {
        linux: { resources: { memory_limit_in_bytes: 32 * 1024 * 1024 } },
      });
      await cri.runtime.StartContainer({ container_id: hog });
      const st = await until("hog to end", async () => {
        const s = await statusOf(hog);
        return s.state === "CONTAINER_EXITED" ? s : undefined;
      });
      assert.equal(st.reason, "OOMKilled", st.message);
      assert.equal(st.exit_code, 137, "killed by the kernel's SIGKILL");
    });

    await t.step(
      "a container exits while pve-cri is killed; the restart reports it",
      async () => {
        const c3 = await create("c3", [
          "/bin/sh",
          "-c",
          "i=0; while [ $i -lt 30 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done; exit 7",
        ]);
        await cri.runtime.StartContainer({ container_id: c3 });
        cri.close();
        await server.stop("SIGKILL");
        const logFile = `${logDir}/c3/0.log`;
        await until("c3 to finish while pve-cri is down", () => {
          try {
            return Deno.readTextFileSync(logFile).includes("tick 29") ? true : undefined;
          } catch {
            return undefined;
          }
        });
        const vmid = vmidOf(c3);
        await until(
          "c3's CT to stop",
          async () => (await lxc.info(String(vmid))).state === "STOPPED" ? true : undefined,
        );
        server = await serve();
        cri = await connect(server.socket);
        const st = await until("the exit to be collected", async () => {
          const s = await statusOf(c3);
          return s.state === "CONTAINER_EXITED" ? s : undefined;
        });
        assert.equal(st.exit_code, 7);
        assert.equal(st.reason, "Error");
        assert.ok(BigInt(st.finished_at) > BigInt(st.started_at));
        const ticks = Deno.readTextFileSync(logFile).trim().split("\n")
          .map((line) => /stdout F tick (\d+)$/.exec(line)?.[1]).filter((n) => n !== undefined)
          .map(Number);
        assert.deepEqual(ticks, [...Array(30).keys()], "no gap in the log");
        assert.equal((await statusOf(ids.c1!)).state, "CONTAINER_RUNNING", "c1 ran on");
      },
    );

    await t.step("StopContainer reports the process's own exit code", async () => {
      const shell = await create("shell", ["/bin/sh", "-c", "sleep 3600"]);
      const trapper = await create("trapper", [
        "/bin/sh",
        "-c",
        "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done",
      ]);
      const ignorer = await create("ignorer", [
        "/bin/sh",
        "-c",
        "trap '' TERM; echo ready; while true; do sleep 0.1; done",
      ]);
      for (const id of [shell, trapper, ignorer]) {
        await cri.runtime.StartContainer({ container_id: id });
      }
      // A signal before the shell set its trap would find the default action.
      for (const name of ["trapper", "ignorer"]) {
        await until(`${name} to set its trap`, () => {
          try {
            const log = Deno.readTextFileSync(`${logDir}/${name}/0.log`);
            return log.includes("ready") ? true : undefined;
          } catch {
            return undefined;
          }
        });
      }
      await Promise.all([
        cri.runtime.StopContainer({ container_id: shell, timeout: 10 }),
        cri.runtime.StopContainer({ container_id: trapper, timeout: 10 }),
        cri.runtime.StopContainer({ container_id: ignorer, timeout: 1 }),
      ]);
      assert.equal((await statusOf(shell)).exit_code, 143);
      const trapped = await statusOf(trapper);
      assert.equal(trapped.exit_code, 0);
      assert.equal(trapped.reason, "Completed");
      assert.equal((await statusOf(ignorer)).exit_code, 137);
      await rejectsWith(cri.runtime.ExecSync({ container_id: shell, cmd: ["true"] }), 9);
    });

    await t.step("processes that end at once report their own status, every time", async () => {
      // The runtime hands the app to conmon as it starts; an app ending in that moment must
      // not lose its status on the way (one in 40 did: -1).
      for (let i = 0; i < 16; i++) {
        const quick = await create(`quick-${i}`, ["/bin/sh", "-c", `exit ${i % 2 === 0 ? 7 : 0}`]);
        await cri.runtime.StartContainer({ container_id: quick });
        const st = await until("the exit", async () => {
          const s = await statusOf(quick);
          return s.state === "CONTAINER_EXITED" ? s : undefined;
        });
        assert.equal(st.exit_code, i % 2 === 0 ? 7 : 0, `quick-${i}`);
        await cri.runtime.RemoveContainer({ container_id: quick });
      }
    });

    await t.step("OCI hooks run at each stage against the process's life", async () => {
      const hookbin = `${dir.path}/hookbin`;
      const hooked = await create("hooked", [
        "/bin/sh",
        "-c",
        `touch ${hookbin}/app-started; exec sleep 3600`,
      ], {
        annotations: { "pve-cri.e2e/hooks": "record" },
        // The startContainer hook's path resolves in the container (OCI): it is mounted there.
        mounts: [{ container_path: hookbin, host_path: hookbin }],
      });
      await cri.runtime.StartContainer({ container_id: hooked });
      await cri.runtime.StopContainer({ container_id: hooked, timeout: 0 });
      await cri.runtime.RemoveContainer({ container_id: hooked });
      // RemoveContainer answers once the removal is under way; poststop follows the CT's destroy.
      const lines = await until("the poststop hook", () => {
        const lines = Deno.readTextFileSync(`${hookbin}/log`).trim().split("\n");
        return lines.at(-1)?.startsWith("stage=poststop") ? lines : undefined;
      });
      const fields = lines.map((line) =>
        Object.fromEntries(line.split(" ").map((kv) => kv.split("=") as [string, string]))
      );
      assert.deepEqual(
        fields.map((f) => f.stage),
        ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        lines.join("\n"),
      );
      const [prestart, createRuntime, createContainer, startContainer, poststart, poststop] =
        fields;
      for (const f of [prestart!, createRuntime!, createContainer!]) {
        // On the node, given the CT's init: it runs, the app does not yet.
        assert.deepEqual([f.status, f.alive, f.app, f.host], [
          "created",
          "yes",
          "no",
          Deno.hostname(),
        ]);
        assert.equal(f.pid, prestart!.pid);
      }
      // In the container's namespaces (its hostname), before the app.
      assert.deepEqual([startContainer!.host, startContainer!.app], ["pod-a", "no"]);
      // Given the app's pid, which runs.
      assert.deepEqual([poststart!.status, poststart!.alive], ["running", "yes"]);
      assert.notEqual(poststart!.pid, prestart!.pid);
      // After the CT is gone: no pid.
      assert.deepEqual([poststop!.status, poststop!.pid], ["stopped", "none"]);
      assert.equal(
        (await cri.runtime.ListContainers({ filter: { id: hooked } })).containers.length,
        0,
      );
    });

    await t.step(
      "a failing prestart hook fails StartContainer; the CT is destroyed",
      async () => {
        const doomed = await create("hook-fails", ["/bin/sh", "-c", "sleep 3600"], {
          annotations: { "pve-cri.e2e/hooks": "fail-prestart" },
        });
        await rejectsWith(
          cri.runtime.StartContainer({ container_id: doomed }),
          9,
          /prestart:20-fail\.json .* exited with 3: no GPU here/,
        );
        const st = await statusOf(doomed);
        assert.equal(st.state, "CONTAINER_EXITED");
        assert.equal(st.reason, "StartError");
        assert.ok(Deno.statSync(`${dir.path}/hookbin/failed-prestart`).isFile, "it ran");
        // The CT is destroyed at once; the container stays EXITED until it is removed.
        assert.deepEqual(
          [...Deno.readDirSync(`${simDir}/lxc`)].filter((e) =>
            Deno.readTextFileSync(`${simDir}/lxc/${e.name}`).includes(doomed)
          ),
          [],
          "no CT config left",
        );
        await cri.runtime.RemoveContainer({ container_id: doomed });
      },
    );

    await t.step("a failing poststop hook is recorded, and the removal goes on", async () => {
      const late = await create("hook-fails-late", ["/bin/sh", "-c", "sleep 3600"], {
        annotations: { "pve-cri.e2e/hooks": "fail-poststop" },
      });
      await cri.runtime.StartContainer({ container_id: late });
      await cri.runtime.StopContainer({ container_id: late, timeout: 0 });
      await cri.runtime.RemoveContainer({ container_id: late });
      await until("the poststop hook", () => {
        try {
          return Deno.statSync(`${dir.path}/hookbin/failed-poststop`).isFile || undefined;
        } catch {
          return undefined;
        }
      });
      const left = await cri.runtime.ListContainers({ filter: { id: late } });
      assert.equal(left.containers.length, 0);
    });

    await t.step("a missing binary: StartContainer fails naming it, nothing runs", async () => {
      const broken = await create("broken", ["/bin/nope"]);
      await rejectsWith(cri.runtime.StartContainer({ container_id: broken }), 9, /\/bin\/nope/);
      const st = await statusOf(broken);
      assert.equal(st.state, "CONTAINER_EXITED");
      assert.equal(st.reason, "StartError");
      assert.equal((await lxc.info(String(vmidOf(broken)))).state, "STOPPED");
    });

    await t.step(
      "an entrypoint there but not runnable (its interpreter missing): it exits, nothing hangs or stays",
      async () => {
        // The check finds an executable file; only the exec in the CT fails. lxc-attach exits
        // without ever running an app, and conmon records lxc-attach's status instead.
        const script = `${dir.path}/bad-interpreter`;
        Deno.writeTextFileSync(script, "#!/no/such/interpreter\n", { mode: 0o755 });
        const bad = await create("bad-interpreter", ["/bad"], {
          mounts: [{ container_path: "/bad", host_path: script, readonly: true }],
        });
        await cri.runtime.StartContainer({ container_id: bad });
        const st = await until("the exit to be seen", async () => {
          const s = await statusOf(bad);
          return s.state === "CONTAINER_EXITED" ? s : undefined;
        });
        assert.equal(st.exit_code, 127, "the exec failed");
        assert.equal(st.reason, "Error");
        await until(
          "the CT to stop",
          async () => (await lxc.info(String(vmidOf(bad)))).state === "STOPPED" || undefined,
        );
        await cri.runtime.RemoveContainer({ container_id: bad });
      },
    );

    await t.step(
      "a CT deleted behind pve-cri's back: the container exited, reason Unknown",
      async () => {
        const doomed = await create("doomed", ["/bin/sleep", "3600"]);
        await cri.runtime.StartContainer({ container_id: doomed });
        const vmid = vmidOf(doomed);
        // What `pct destroy --force` does on a node: the CT is stopped, its config and root
        // removed. The config goes first here: an exit seen while the config is still there is
        // an ordinary kill (137, Error), and which of the two pve-cri sees first is a race.
        Deno.removeSync(`${simDir}/lxc/${vmid}.conf`);
        await lxc.kill(String(vmid));
        Deno.removeSync(`${lxcpath}/${vmid}`, { recursive: true });
        const st = await until("the exit to be seen", async () => {
          const s = await statusOf(doomed);
          return s.state === "CONTAINER_EXITED" ? s : undefined;
        });
        assert.equal(st.reason, "Unknown");
        assert.match(st.message, new RegExp(`CT ${vmid} was removed outside pve-cri`));
      },
    );

    await t.step(
      "a CT stopped with lxc-stop behind pve-cri's back: EXITED with the app's code, and an event",
      async () => {
        using events = cri.runtime.GetContainerEvents({});
        const stopped = await create("stopped-behind", ["/bin/sleep", "3600"]);
        const seen: string[] = [];
        const next = async (type: string) => {
          while (!seen.includes(type)) {
            const event = await events.next({ timeoutMs: 30_000 });
            if (event.container_id === stopped) seen.push(event.container_event_type);
          }
        };
        // Its CREATED event: the stream is live before anything happens behind its back.
        await next("CONTAINER_CREATED_EVENT");
        await cri.runtime.StartContainer({ container_id: stopped });
        await lxc.kill(String(vmidOf(stopped)));
        await next("CONTAINER_STOPPED_EVENT");
        const st = await statusOf(stopped);
        assert.equal(st.state, "CONTAINER_EXITED");
        assert.equal(st.exit_code, 137, "the app died with its CT's init: SIGKILL");
      },
    );

    await t.step(
      "a monitor killed behind pve-cri's back: a reconciliation reports the container exited, reason Unknown",
      async () => {
        const orphaned = await create("monitor-killed", ["/bin/sleep", "3600"]);
        await cri.runtime.StartContainer({ container_id: orphaned });
        const pid = Number(
          Deno.readTextFileSync(`${stateDir}/node/containers/${orphaned}/conmon.pid`),
        );
        Deno.kill(pid, "SIGKILL");
        await until("the monitor gone", () => pathExists(`/proc/${pid}`) ? undefined : true);
        const http = readServerInfo(stateDir)!.http!;
        const drift = await (await fetch(`${http}/v1/reconcile`, { method: "POST" })).json();
        const lost = drift.drift.find((d: { kind: string; subject: string }) =>
          d.kind === "lost monitor" && d.subject === orphaned
        );
        assert.equal(lost?.repaired, "exited (Unknown)", JSON.stringify(drift));
        const st = await statusOf(orphaned);
        assert.equal(st.state, "CONTAINER_EXITED");
        assert.equal(st.reason, "Unknown");
        // Its CT still runs the app: removal takes it down.
        const vmid = vmidOf(orphaned);
        await cri.runtime.RemoveContainer({ container_id: orphaned });
        await until("its CT gone", () => pathExists(`${lxcpath}/${vmid}`) ? undefined : true);
      },
    );

    await t.step("a hostNetwork pod's container has the node's network and hostname", async () => {
      const nodeHostname = Deno.hostname();
      const hostPod = {
        metadata: { name: "host-pod", uid: "host-pod-uid", namespace: "e2e", attempt: 0 },
        log_directory: `${dir.path}/logs/e2e_host-pod`,
        linux: {
          security_context: { namespace_options: { network: "NODE", pid: "CONTAINER" } },
        },
      };
      hostPodId = (await cri.runtime.RunPodSandbox({ config: hostPod })).pod_sandbox_id;
      const { container_id } = await cri.runtime.CreateContainer({
        pod_sandbox_id: hostPodId,
        config: {
          metadata: { name: "h", attempt: 0 },
          image: { image: "busybox" },
          command: ["/bin/sleep", "3600"],
          log_path: "h/0.log",
          linux: {},
        },
        sandbox_config: hostPod,
      });
      ids.h = container_id;
      await cri.runtime.StartContainer({ container_id });
      assert.equal((await exec(container_id, ["hostname"])).out, `${Deno.hostname()}\n`);
      const netDev = (text: string) =>
        text.split("\n").slice(2).map((l) => l.split(":")[0]!.trim()).filter((n) => n !== "")
          .sort();
      assert.deepEqual(
        netDev((await exec(container_id, ["cat", "/proc/net/dev"])).out),
        netDev(Deno.readTextFileSync("/proc/net/dev")),
        "the node's interfaces",
      );
      assert.equal(Deno.hostname(), nodeHostname, "the node's hostname is untouched");
    });

    await t.step("bad mounts are InvalidArgument naming the mount", async () => {
      await rejectsWith(
        create("bad", ["/bin/true"], {
          mounts: [{ container_path: "data", host_path: hostData }],
        }),
        3,
        /config\.mounts\[0\]/,
      );
      await rejectsWith(
        create("bad", ["/bin/true"], {
          mounts: [{ container_path: "/a/../etc", host_path: hostData }],
        }),
        3,
        /config\.mounts\[0\]/,
      );
    });
  } finally {
    // Remove everything, as the kubelet would (on a server that runs, whatever failed).
    if (
      server.child.pid === undefined || (await Promise.race([
        server.child.status.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 0)),
      ]))
    ) {
      server = await serve();
    }
    cri.close();
    cri = await connect(server.socket);
    const list = await cri.runtime.ListContainers({}).catch(() => ({ containers: [] }));
    for (const c of list.containers ?? []) {
      await cri.runtime.StopContainer({ container_id: c.id, timeout: 0 }).catch(() => {});
      await cri.runtime.RemoveContainer({ container_id: c.id }).catch(() => {});
    }
    for (const id of [podId, hostPodId].filter((id) => id !== "")) {
      await cri.runtime.StopPodSandbox({ pod_sandbox_id: id }).catch(() => {});
      await cri.runtime.RemovePodSandbox({ pod_sandbox_id: id }).catch(() => {});
    }
    cri.close();
    await server.stop("SIGTERM");
    await runTool("ip", ["link", "del", bridge]).catch(() => {});
    await runTool("umount", ["-l", `${shared}/sub`]).catch(() => {});
    await runTool("umount", ["-l", shared]).catch(() => {});
  }

  await t.step("nothing is left: CTs, processes, mounts, namespaces, cgroups, pod dirs", () => {
    const cts = [...Deno.readDirSync(lxcpath)].map((e) => e.name);
    assert.deepEqual(cts, [], "no LXC container");
    const ours = [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name))
      .map((e) => {
        try {
          return Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
        } catch {
          return "";
        }
      })
      .filter((cmd) => cmd.includes(stateDir));
    assert.deepEqual(ours, [], "no process of this state dir");
    const mounts = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
      .filter((l) => l.includes(stateDir));
    assert.deepEqual(mounts, [], "no mount");
    assert.deepEqual([...Deno.readDirSync(`${stateDir}/node/pods`)], [], "no pod dir or netns");
    assert.deepEqual([...Deno.readDirSync(`${stateDir}/node/containers`)], [], "no monitor dir");
    assert.deepEqual([...Deno.readDirSync(`${stateDir}/node/includes`)], [], "no include file");
    assert.deepEqual([...Deno.readDirSync(`${stateDir}/node/cni/results`)], [], "no CNI result");
    const allocated = [...Deno.readDirSync(`${dir.path}/ipam/e2e`)].map((e) => e.name)
      .filter((name) => /^\d+\.\d+\.\d+\.\d+$|^[0-9a-f]*:[0-9a-f:]*$/.test(name));
    assert.deepEqual(allocated, [], "no pod IP left allocated");
    const [lower, upper] = vmids;
    const cgroupRoot = cgroupOf(Deno.pid)?.v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
    const cgroups = [...Deno.readDirSync(cgroupRoot)].map((e) => e.name)
      .filter((name) => {
        const vmid = Number(/^lxc\.(?:payload|monitor)\.(\d+)$/.exec(name)?.[1]);
        return vmid >= lower && vmid <= upper;
      });
    assert.deepEqual(cgroups, [], "no cgroup directory");
  });
}
