/**
 * The crash-point matrix on the memory backend: a kubelet-like client drives a pod and a
 * container through their whole life (run, create, start, stop, remove, stop and remove the
 * pod), and pve-cri is SIGKILLed at every point the crash-free run passes — right after each
 * event type commits, right before each effect starts. The client does what the kubelet does:
 * it restarts nothing itself, but after the runtime comes back it looks at what exists and
 * retries. In the end nothing may be left (no pod, container or CT), the log must verify,
 * and every stream must be removed, as in the crash-free run. One line per point is printed.
 */
import assert from "node:assert/strict";
import { bufferOutput } from "../../cli/output.ts";
import { runReplay } from "../../cli/replay.ts";
import { connect, type CriClient, type CriMessage } from "../_support/cri_client.ts";
import { type ServerProcess, startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { seedImage } from "../_support/test_image.ts";

const pod = {
  metadata: { name: "web", uid: "web-uid", namespace: "matrix", attempt: 0 },
  linux: {},
};
const container = {
  metadata: { name: "app", attempt: 0 },
  image: { image: "busybox" },
  command: ["/bin/sleep", "3600"],
  linux: {},
};

function replayJson(stateDir: string, ...args: string[]) {
  const out = bufferOutput();
  const status = runReplay([...args, "--state-dir", stateDir, "--json"], out);
  return { status, json: JSON.parse(out.stdout.join("\n") || "null") };
}

/** The runtime under test, restarted (without the crash point) whenever it died. */
class Runtime {
  server!: ServerProcess;
  cri!: CriClient;
  crashed = false;

  constructor(readonly dir: string, readonly env: Record<string, string>) {}

  async start(env: Record<string, string>) {
    this.server = await startServer({ dir: this.dir, env });
    this.cri = await connect(this.server.socket);
  }

  /** Did the server die? Then bring it back as the node's service manager would. */
  async recover(): Promise<boolean> {
    const dead = await Promise.race([
      this.server.child.status.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 200)),
    ]);
    if (!dead) return false;
    const status = await this.server.child.status;
    if (status.signal === "SIGKILL") this.crashed = true;
    this.cri.close();
    await this.start({});
    return true;
  }

  /** One kubelet step: call; if the runtime died, wait for it, look, and try again. */
  async step<T>(call: () => Promise<T>, look: () => Promise<T | undefined>): Promise<T> {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!(await this.recover())) {
          // Alive and refusing: see whether the work is done after all (AlreadyExists, …).
          const seen = await look();
          if (seen !== undefined) return seen;
          await new Promise((r) => setTimeout(r, 100));
          if (attempt === 19) throw error;
          continue;
        }
      }
      const seen = await look();
      if (seen !== undefined) return seen;
    }
    throw new Error("the step never succeeded");
  }

  async close() {
    this.cri.close();
    await this.server.stop("SIGTERM");
  }
}

async function lifecycle(rt: Runtime): Promise<void> {
  const listPod = async () => {
    const { items } = await rt.cri.runtime.ListPodSandbox({});
    return items.find((p: CriMessage) => p.metadata.name === "web");
  };
  const readyPod = async () => {
    const found = await listPod();
    return found?.state === "SANDBOX_READY" ? found.id as string : undefined;
  };
  const podId = await rt.step(
    async () => (await rt.cri.runtime.RunPodSandbox({ config: pod })).pod_sandbox_id as string,
    readyPod,
  );
  const listed = async (state?: string) => {
    const { containers } = await rt.cri.runtime.ListContainers({});
    const found = containers.find((c: CriMessage) => c.metadata.name === "app");
    return found !== undefined && (state === undefined || found.state === state)
      ? found.id as string
      : undefined;
  };
  const containerId = await rt.step(
    async () =>
      (await rt.cri.runtime.CreateContainer({
        pod_sandbox_id: podId,
        config: container,
        sandbox_config: pod,
      })).container_id as string,
    () => listed(),
  );
  const stateOf = async () =>
    (await rt.cri.runtime.ContainerStatus({ container_id: containerId })).status.state as string;
  await rt.step(
    async () => await rt.cri.runtime.StartContainer({ container_id: containerId }),
    async () => (await stateOf()) === "CONTAINER_RUNNING" ? {} : undefined,
  );
  await rt.step(
    async () => await rt.cri.runtime.StopContainer({ container_id: containerId, timeout: 0 }),
    async () => (await stateOf()) === "CONTAINER_EXITED" ? {} : undefined,
  );
  await rt.step(
    async () => await rt.cri.runtime.RemoveContainer({ container_id: containerId }),
    async () => (await listed()) === undefined ? {} : undefined,
  );
  await rt.step(
    async () => await rt.cri.runtime.StopPodSandbox({ pod_sandbox_id: podId }),
    async () => (await listPod())?.state === "SANDBOX_NOTREADY" ? {} : undefined,
  );
  await rt.step(
    async () => await rt.cri.runtime.RemovePodSandbox({ pod_sandbox_id: podId }),
    async () => (await listPod()) === undefined ? {} : undefined,
  );
}

/** What a finished run left behind; a clean one leaves nothing. */
async function leftovers(rt: Runtime, stateDir: string): Promise<string[]> {
  const problems: string[] = [];
  const pods = (await rt.cri.runtime.ListPodSandbox({})).items;
  if (pods.length > 0) problems.push(`${pods.length} pod(s) listed`);
  const containers = (await rt.cri.runtime.ListContainers({})).containers;
  if (containers.length > 0) problems.push(`${containers.length} container(s) listed`);
  const cts = [...Deno.readDirSync(`${stateDir}/proxmox/lxc`)].map((e) => e.name);
  if (cts.length > 0) problems.push(`CT config(s) left: ${cts.join(", ")}`);
  const { json: list } = replayJson(stateDir);
  for (const s of list.streams) {
    if (s.kind !== "image" && s.state !== "removed") {
      problems.push(`${s.kind} ${s.name} is ${s.state}`);
    }
  }
  const verify = bufferOutput();
  if (runReplay(["--state-dir", stateDir, "--verify"], verify) !== 0) {
    problems.push(`replay --verify: ${verify.stdout.join(" ")}`);
  }
  return problems;
}

/**
 * The crash-free run: where it passes is where the matrix crashes — after every occurrence of
 * every event type, before every start of every effect (`NAME:N`).
 */
async function crashPoints(): Promise<{ events: string[]; effects: string[] }> {
  using dir = tempDir("pve-cri-matrix-");
  const stateDir = `${dir.path}/state`;
  await seedImage({ stateDir, name: "busybox" });
  const rt = new Runtime(dir.path, {});
  await rt.start({});
  try {
    await lifecycle(rt);
    assert.deepEqual(await leftovers(rt, stateDir), [], "the crash-free run leaves nothing");
  } finally {
    await rt.close();
  }
  const events = new Map<string, number>();
  const effects = new Map<string, number>();
  const count = (map: Map<string, number>, name: string) => map.set(name, (map.get(name) ?? 0) + 1);
  const { json: list } = replayJson(stateDir);
  for (const stream of list.streams.filter((s: CriMessage) => s.kind !== "image")) {
    let lastEffect: string | undefined;
    for (const event of replayJson(stateDir, stream.stream).json.events) {
      count(events, event.type);
      // An effect's first event marks one start of it (an effect may emit several).
      const effect = event.meta?.effect;
      if (typeof effect === "string" && effect !== lastEffect) count(effects, effect);
      lastEffect = typeof effect === "string" ? effect : undefined;
    }
  }
  const occurrences = (map: Map<string, number>) =>
    [...map].sort(([a], [b]) => a < b ? -1 : 1)
      .flatMap(([name, n]) => Array.from({ length: n }, (_, i) => `${name}:${i + 1}`));
  return { events: occurrences(events), effects: occurrences(effects) };
}

Deno.test({
  name:
    "crash matrix (memory backend): a crash at every event and effect of a pod's life loses and leaks nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { events, effects } = await crashPoints();
    const points = [
      ...events.map((type) => ({ env: { PVE_CRI_CRASH_AFTER: type }, label: `after ${type}` })),
      ...effects.map((name) => ({
        env: { PVE_CRI_CRASH_BEFORE_EFFECT: name },
        label: `before ${name}`,
      })),
    ];
    const failures: string[] = [];
    for (const point of points) {
      using dir = tempDir("pve-cri-matrix-");
      const stateDir = `${dir.path}/state`;
      await seedImage({ stateDir, name: "busybox" });
      const rt = new Runtime(dir.path, point.env);
      await rt.start(point.env);
      let outcome: string;
      try {
        await lifecycle(rt);
        const problems = await leftovers(rt, stateDir);
        outcome = !rt.crashed
          ? "not reached"
          : problems.length === 0
          ? "crashed, recovered, nothing left"
          : `LEFT: ${problems.join("; ")}`;
      } catch (error) {
        outcome = `FAILED: ${(error as Error).message}`;
      } finally {
        await rt.close();
      }
      // The matrix is the test's report: one line per crash point.
      // deno-lint-ignore no-console
      console.log(`crash ${point.label.padEnd(40)} → ${outcome}`);
      if (!outcome.startsWith("crashed, recovered")) failures.push(`${point.label}: ${outcome}`);
    }
    assert.deepEqual(failures, [], failures.join("\n"));
  },
});
