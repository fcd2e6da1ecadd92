/**
 * Recovery: `recovery.start_10k` — seconds from spawning `deno task start` to its serving line
 * with 10,000 containers in the store (memory backend; the median of five restarts), beside a
 * restart on an empty state dir; `recovery.resume_100` — seconds from spawning pve-cri again to every one of 100
 * CreateContainer calls that were in flight when it was SIGKILLed being settled (each had its
 * Proxmox create task started and recorded, not yet its CT), against a simulator that keeps
 * running as its own Proxmox would; beside them, `containerd.restart_100` — containerd's
 * restart with 100 running containers, when it is installed.
 */
import { writeProxmoxConfig } from "../adapters/proxmox/config.ts";
import { simulatorConfig, startSimulator } from "../adapters/proxmox/sim/mod.ts";
import { silentLogger } from "../lib/log.ts";
import { openRuntime } from "../runtime/open_runtime.ts";
import { connect } from "../tests/_support/cri_client.ts";
import { startServer } from "../tests/_support/server_process.ts";
import { containerSpec, sandboxSpec } from "../tests/_support/specs.ts";
import { tempDir } from "../tests/_support/temp_dir.ts";
import { seedImage, testImageName, writeArchive } from "../tests/_support/test_image.ts";
import { type BenchContext, type Benchmark, round } from "./bench.ts";
import { startPeer } from "./containerd_peer.ts";

const call = { meta: { method: "bench" } };

async function start10k(context: BenchContext) {
  using dir = tempDir("pve-cri-bench-recovery-");
  const stateDir = `${dir.path}/state`;
  const pods = 100;
  const perPod = 100;
  const seed = async (state: string, pods: number) => {
    const rt = await openRuntime({
      stateDir: state,
      backend: "memory",
      log: silentLogger,
      version: "bench",
    });
    try {
      await rt.runtime.importImage(writeArchive(dir.path), call, { name: testImageName });
      for (let p = 0; p < pods; p++) {
        const pod = await rt.runtime.runPodSandbox(sandboxSpec(`pod-${p}`), call);
        await Promise.all(
          Array.from(
            { length: perPod },
            (_, c) => rt.runtime.createContainer(pod.id, containerSpec(`c-${c}`), call),
          ),
        );
      }
    } finally {
      await rt.close();
    }
  };
  await seed(stateDir, pods);
  await seed(`${dir.path}/hundred`, 1);
  const timedStart = async (state: string, expect: number) => {
    const started = performance.now();
    await using server = await startServer({ dir: dir.path, stateDir: state });
    const seconds = (performance.now() - started) / 1000;
    const cri = await connect(server.socket);
    try {
      const { containers } = await cri.runtime.ListContainers({});
      if (containers.length !== expect) {
        throw new Error(`${containers.length} containers listed after the restart, not ${expect}`);
      }
    } finally {
      cri.close();
    }
    return seconds;
  };
  // The median of five restarts: one start on a shared 2-core machine varies by ±20%.
  const medianStart = async (state: string, expect: number) => {
    const runs: number[] = [];
    for (let i = 0; i < 5; i++) runs.push(await timedStart(state, expect));
    runs.sort((a, b) => a - b);
    return { median: runs[2]!, min: runs[0]!, max: runs[4]! };
  };
  await timedStart(`${dir.path}/empty`, 0); // its first start makes the simulator's identity
  const empty = await medianStart(`${dir.path}/empty`, 0);
  const full = await medianStart(stateDir, pods * perPod);
  const hundred = await medianStart(`${dir.path}/hundred`, perPod);
  context.emit({
    bench: "recovery.start_100",
    value: round(hundred.median, 3),
    unit: "s",
    containers: perPod,
    note: "beside containerd.restart_100",
  });
  context.emit({
    bench: "recovery.start_10k",
    value: round(full.median, 3),
    unit: "s",
    containers: pods * perPod,
    min_s: round(full.min, 3),
    max_s: round(full.max, 3),
    empty_state_dir_s: round(empty.median, 3),
    target: "≤ 0.5",
  });
}

async function resume100(context: BenchContext) {
  using dir = tempDir("pve-cri-bench-resume-");
  let accepted = 0;
  const sim = await startSimulator({
    stateDir: `${dir.path}/sim`,
    onRequest: (r) => {
      if (r.method === "POST" && /\/lxc$/.test(r.path) && r.status === 200) accepted++;
    },
  });
  const configFile = `${dir.path}/pve.json`;
  writeProxmoxConfig(configFile, simulatorConfig(sim));
  const stateDir = `${dir.path}/state`;
  try {
    await seedImage({ stateDir, backend: "proxmox", configFile, name: testImageName });
    const count = 100;
    // Create tasks run a while after Proxmox accepted them: the crash finds them all in flight.
    const slow = sim.faults.add({ method: "POST", path: "/nodes/*/lxc", taskDelayMs: 2000 });
    const first = await startServer({
      dir: dir.path,
      stateDir,
      backend: "proxmox",
      config: configFile,
      fakeNode: true,
    });
    const cri = await connect(first.socket);
    const config = { metadata: { name: "resume", uid: "resume-uid", namespace: "b", attempt: 0 } };
    const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config });
    const calls = Array.from({ length: count }, (_, i) =>
      cri.runtime.CreateContainer({
        pod_sandbox_id,
        config: { metadata: { name: `c-${i}`, attempt: 0 }, image: { image: testImageName } },
        sandbox_config: config,
      }).catch(() => undefined));
    // Every create accepted by Proxmox, its UPID recorded: then the crash.
    while (accepted < count) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    await first.stop("SIGKILL");
    cri.close();
    await Promise.all(calls);
    sim.faults.remove(slow);
    await sim.idle(); // the tasks end while pve-cri is down, as on a node
    const started = performance.now();
    await using second = await startServer({
      dir: dir.path,
      stateDir,
      backend: "proxmox",
      config: configFile,
      fakeNode: true,
    });
    const again = await connect(second.socket);
    try {
      for (;;) {
        const { containers } = await again.runtime.ListContainers({});
        const settled = containers.filter((c: { state: string }) =>
          c.state === "CONTAINER_CREATED"
        );
        if (settled.length === count) break;
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      again.close();
    }
    context.emit({
      bench: "recovery.resume_100",
      value: round((performance.now() - started) / 1000, 3),
      unit: "s",
      operations: count,
      target: "≤ 2",
    });
  } finally {
    await sim.close();
  }
}

/**
 * containerd 1.6's restart with 100 running containers (10 host-network pods of 10): seconds
 * from spawning it to its CRI listing all 100, as a kubelet would see it back. Needs root.
 */
async function containerdRestart(context: BenchContext) {
  if (Deno.uid() !== 0) {
    context.emit({ bench: "containerd.restart_100", value: 0, unit: "s", skipped: "needs root" });
    return;
  }
  using dir = tempDir("pve-cri-bench-ctrd-restart-");
  const peer = await startPeer(`${dir.path}/containerd`);
  if (peer === undefined) {
    context.emit({
      bench: "containerd.restart_100",
      value: 0,
      unit: "s",
      skipped: "containerd not installed",
    });
    return;
  }
  const pods: string[] = [];
  try {
    for (let p = 0; p < 10; p++) {
      const config = {
        metadata: { name: `restart-${p}`, uid: `restart-uid-${p}`, namespace: "b", attempt: 0 },
        log_directory: `${dir.path}/logs/${p}`,
        linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER" } } },
      };
      const { pod_sandbox_id } = await peer.cri.runtime.RunPodSandbox({ config });
      pods.push(pod_sandbox_id);
      for (let c = 0; c < 10; c++) {
        const { container_id } = await peer.cri.runtime.CreateContainer({
          pod_sandbox_id,
          config: {
            metadata: { name: `c-${c}`, attempt: 0 },
            image: { image: peer.image },
            command: ["/bin/sleep", "3600"],
            log_path: `c-${c}.log`,
            linux: {},
          },
          sandbox_config: config,
        });
        await peer.cri.runtime.StartContainer({ container_id });
      }
    }
    const spawnedAt = await peer.restart();
    for (;;) {
      const listed = await peer.cri.runtime.ListContainers({}).catch(() => undefined);
      if (listed?.containers.length === 100) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    context.emit({
      bench: "containerd.restart_100",
      value: round((performance.now() - spawnedAt) / 1000, 3),
      unit: "s",
      containers: 100,
      note: "running containers; beside recovery.start_10k and recovery.resume_100",
    });
  } finally {
    for (const pod of pods) {
      await peer.cri.runtime.StopPodSandbox({ pod_sandbox_id: pod }).catch(() => {});
      await peer.cri.runtime.RemovePodSandbox({ pod_sandbox_id: pod }).catch(() => {});
    }
    await peer.stop();
  }
}

export const benchmarks: Benchmark[] = [
  { results: ["recovery.start_10k", "recovery.start_100"], run: start10k },
  { results: ["recovery.resume_100"], run: resume100 },
  { results: ["containerd.restart_100"], run: containerdRestart },
];
