/**
 * The crictl-style lifecycle on real containers: runp, create, start, exec_sync, stop, rm,
 * stopp, rmp through the CRI socket, on `--backend lxc`, p50 and p90 per step; and beside it,
 * in the same run, a private containerd (Debian's containerd + runc, its own root, state dir
 * and socket) driven through the same client with the same image, when it is installed. Also
 * the host memory each running container costs outside its CT (monitor and LXC processes).
 */
import { connect, type CriClient } from "../tests/_support/cri_client.ts";
import { busyboxImage, busyboxPath } from "../tests/_support/oci_images.ts";
import { startServer } from "../tests/_support/server_process.ts";
import { seedImage } from "../tests/_support/test_image.ts";
import { tempDir } from "../tests/_support/temp_dir.ts";
import { missingNodeTools } from "../runtime/open_runtime.ts";
import { runTool } from "../adapters/node/run_tool.ts";
import { type BenchContext, type Benchmark, percentile, round } from "./bench.ts";
import { bridgeNetwork, cniBinDirs } from "../tests/_support/cni_networks.ts";
import { startPeer } from "./containerd_peer.ts";

const steps = ["runp", "create", "start", "exec_sync", "stop", "rm", "stopp", "rmp"] as const;
type Step = (typeof steps)[number];
const warmup = 2;
const measured = 25;
const rssContainers = 5;

type Samples = Map<Step, number[]>;

function podConfig(i: number, hostNetwork: boolean, logDir: string) {
  return {
    metadata: { name: `bench-${i}`, uid: `bench-uid-${i}`, namespace: "bench", attempt: 0 },
    // runc refuses a hostname for a pod in the host's UTS namespace.
    hostname: hostNetwork ? "" : `bench-${i}`,
    log_directory: `${logDir}/bench_${i}`,
    linux: {
      security_context: {
        namespace_options: { network: hostNetwork ? "NODE" : "POD", pid: "CONTAINER" },
      },
    },
  };
}

/** One crictl-style lifecycle, its steps' times added to `samples` (after the warm-up). */
async function lifecycle(
  cri: CriClient,
  image: string,
  i: number,
  logDir: string,
  samples: Samples,
): Promise<void> {
  const timed = async <T>(step: Step, call: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    const result = await call();
    if (i >= warmup) samples.get(step)!.push(performance.now() - start);
    return result;
  };
  const config = podConfig(i, false, logDir);
  const { pod_sandbox_id } = await timed("runp", () => cri.runtime.RunPodSandbox({ config }));
  const { container_id } = await timed("create", () =>
    cri.runtime.CreateContainer({
      pod_sandbox_id,
      config: {
        metadata: { name: "c", attempt: 0 },
        image: { image },
        command: ["/bin/sleep", "3600"],
        log_path: "c/0.log",
        linux: {},
      },
      sandbox_config: config,
    }));
  await timed("start", () => cri.runtime.StartContainer({ container_id }));
  await timed(
    "exec_sync",
    () => cri.runtime.ExecSync({ container_id, cmd: ["/bin/true"], timeout: 10 }),
  );
  await timed("stop", () => cri.runtime.StopContainer({ container_id, timeout: 10 }));
  await timed("rm", () => cri.runtime.RemoveContainer({ container_id }));
  await timed("stopp", () => cri.runtime.StopPodSandbox({ pod_sandbox_id }));
  await timed("rmp", () => cri.runtime.RemovePodSandbox({ pod_sandbox_id }));
}

function emptySamples(): Samples {
  return new Map(steps.map((s) => [s, []]));
}

function sortSamples(samples: Samples): Samples {
  for (const list of samples.values()) list.sort((a, b) => a - b);
  return samples;
}

/**
 * Memory (MB) of host processes whose command line matches, summed: RSS, PSS, and USS (the
 * pages only that process maps: what ending it frees).
 */
function memoryOf(match: (cmdline: string) => boolean): Memory {
  let rss = 0;
  let pss = 0;
  let uss = 0;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
      if (!match(cmd)) continue;
      const status = Deno.readTextFileSync(`/proc/${entry.name}/status`);
      rss += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      // PSS shares a page among the processes mapping it: liblxc's pages are not counted thrice.
      const rollup = Deno.readTextFileSync(`/proc/${entry.name}/smaps_rollup`);
      pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      uss += Number(/^Private_Clean:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) +
        Number(/^Private_Dirty:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return { rss: rss / 1024, pss: pss / 1024, uss: uss / 1024 };
}

interface Memory {
  rss: number;
  pss: number;
  uss: number;
}

/**
 * Runs `rssContainers` containers, all in one pod or one pod each; returns the host MB per
 * container of the processes matched, the pods' own share included.
 */
async function hostMemoryPerContainer(
  cri: CriClient,
  image: string,
  hostNetwork: boolean,
  logDir: string,
  match: (cmdline: string) => boolean,
  layout: "one pod" | "a pod each",
): Promise<Memory> {
  // From before the pods: containerd's shim (one per pod) and pause count, as our monitors do.
  const before = memoryOf(match);
  const pods: string[] = [];
  for (let i = 0; i < rssContainers; i++) {
    const config = podConfig(1000 + (layout === "one pod" ? 0 : i), hostNetwork, logDir);
    if (layout === "a pod each" || i === 0) {
      pods.push((await cri.runtime.RunPodSandbox({ config })).pod_sandbox_id);
    }
    const { container_id } = await cri.runtime.CreateContainer({
      pod_sandbox_id: pods[pods.length - 1],
      config: {
        metadata: { name: `rss-${i}`, attempt: 0 },
        image: { image },
        command: ["/bin/sleep", "3600"],
        log_path: `rss-${i}/0.log`,
        linux: {},
      },
      sandbox_config: config,
    });
    await cri.runtime.StartContainer({ container_id });
  }
  await new Promise((r) => setTimeout(r, 500));
  const after = memoryOf(match);
  for (const pod_sandbox_id of pods) {
    await cri.runtime.StopPodSandbox({ pod_sandbox_id });
    await cri.runtime.RemovePodSandbox({ pod_sandbox_id });
  }
  return {
    rss: (after.rss - before.rss) / rssContainers,
    pss: (after.pss - before.pss) / rssContainers,
    uss: (after.uss - before.uss) / rssContainers,
  };
}

/** Host memory per container in both layouts, as `PREFIX.host_{rss,pss,uss}_per_container…`. */
async function emitMemory(
  context: BenchContext,
  prefix: string,
  counted: string,
  measure: (layout: "one pod" | "a pod each") => Promise<Memory>,
) {
  for (const layout of ["one pod", "a pod each"] as const) {
    const memory = await measure(layout);
    const suffix = layout === "one pod" ? "" : "_pod_each";
    for (const kind of ["rss", "pss", "uss"] as const) {
      context.emit({
        bench: `${prefix}.host_${kind}_per_container${suffix}`,
        value: round(memory[kind], 1),
        unit: "MB",
        counted,
        layout: `${rssContainers} containers in ${layout}`,
      });
    }
  }
}

function emitSteps(context: BenchContext, prefix: string, samples: Samples) {
  for (const step of steps) {
    const list = samples.get(step)!;
    context.emit({
      bench: `${prefix}.${step}_p50`,
      value: round(percentile(list, 50), 1),
      unit: "ms",
    });
    context.emit({
      bench: `${prefix}.${step}_p90`,
      value: round(percentile(list, 90), 1),
      unit: "ms",
    });
  }
}

async function run(context: BenchContext) {
  const why = Deno.uid() !== 0
    ? "needs root"
    : busyboxPath === undefined
    ? "busybox-static is not installed"
    : missingNodeTools();
  if (why !== undefined) {
    context.emit({ bench: "lxc.skipped", value: 1, unit: "", reason: why });
    return;
  }
  using dir = tempDir("pve-cri-bench-lxc-");
  const stateDir = `${dir.path}/state`;
  const configFile = `${dir.path}/config.json`;
  const lower = 900_000 + Math.floor(Math.random() * 90) * 1000;
  // Both runtimes put their pods on a bridge of their own through the same CNI plugins.
  const ourNet = podNetwork(`${dir.path}/net.d`, "pcbench0", "10.88.250");
  const theirNet = podNetwork(`${dir.path}/containerd/cni-conf`, "pcbench1", "10.88.251");
  Deno.writeTextFileSync(
    configFile,
    JSON.stringify({ lxc: { vmids: [lower, lower + 999] }, cni: ourNet.settings }),
  );
  try {
    await compare(context, dir.path, stateDir, configFile);
  } finally {
    await ourNet.remove();
    await theirNet.remove();
  }
}

/** A bridge + host-local conflist in `confDir`; `remove` deletes the bridge. */
function podNetwork(confDir: string, bridge: string, subnet: string) {
  Deno.mkdirSync(confDir, { recursive: true });
  Deno.writeTextFileSync(
    `${confDir}/10-bench.conflist`,
    JSON.stringify(
      bridgeNetwork({
        name: "bench",
        bridge,
        subnet: `${subnet}.0/24`,
        dataDir: `${confDir}/../ipam-${bridge}`,
      }),
    ),
  );
  return {
    settings: { confDir, binDirs: cniBinDirs },
    async remove() {
      await runTool("ip", ["link", "del", bridge]).catch(() => {});
    },
  };
}

async function compare(
  context: BenchContext,
  root: string,
  stateDir: string,
  configFile: string,
) {
  await seedImage({
    stateDir,
    backend: "lxc",
    configFile,
    name: "busybox:1.36",
    image: busyboxImage(),
  });
  const logDir = `${root}/logs`;
  await using server = await startServer({
    dir: root,
    stateDir,
    backend: "lxc",
    config: configFile,
  });
  const cri = await connect(server.socket);
  const peer = await startPeer(`${root}/containerd`);
  try {
    // Lifecycles alternate between the two runtimes, so the machine's noise falls on both.
    const ours = emptySamples();
    const theirs = emptySamples();
    for (let i = 0; i < warmup + measured; i++) {
      await lifecycle(cri, "busybox:1.36", i, `${logDir}/lxc`, ours);
      if (peer !== undefined) await lifecycle(peer.cri, peer.image, i, `${logDir}/peer`, theirs);
    }
    emitSteps(context, "lxc", sortSamples(ours));
    await emitMemory(
      context,
      "lxc",
      "conmon, the LXC monitor (an lxc-attach too, where one stays)",
      (layout) =>
        hostMemoryPerContainer(
          cri,
          "busybox:1.36",
          false,
          logDir,
          (cmd) => cmd.includes(stateDir) && !cmd.includes("main.ts"),
          layout,
        ),
    );
    if (peer === undefined) {
      context.emit({
        bench: "containerd.skipped",
        value: 1,
        unit: "",
        reason: "containerd not installed",
      });
      return;
    }
    emitSteps(context, "containerd", sortSamples(theirs));
    for (const step of steps) {
      const a = percentile(ours.get(step)!, 50);
      const b = percentile(theirs.get(step)!, 50);
      context.emit({ bench: `lxc.${step}_vs_containerd`, value: round(a / b, 2), unit: "ratio" });
    }
    await emitMemory(
      context,
      "containerd",
      "containerd-shim-runc-v2",
      (layout) =>
        hostMemoryPerContainer(
          peer.cri,
          peer.image,
          false,
          logDir,
          (cmd) => cmd.includes("containerd-shim") && cmd.includes(peer.dir),
          layout,
        ),
    );
  } finally {
    cri.close();
    await peer?.stop();
  }
}

export const benchmarks: Benchmark[] = [{
  results: [
    ...steps.flatMap((s) => [`lxc.${s}_p50`, `lxc.${s}_p90`, `lxc.${s}_vs_containerd`]),
    ...steps.map((s) => `containerd.${s}_p50`),
    ...["lxc", "containerd"].flatMap((side) =>
      ["rss", "pss", "uss"].flatMap((kind) => [
        `${side}.host_${kind}_per_container`,
        `${side}.host_${kind}_per_container_pod_each`,
      ])
    ),
  ],
  run,
}];
