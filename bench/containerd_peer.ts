/**
 * A private containerd (Debian's containerd + runc: its own root, state dir, socket and CNI
 * config dir) with the benchmarks' busybox image, for numbers beside pve-cri's.
 */
import { dirname } from "node:path";
import { findPlugin } from "../adapters/cni/plugin_exec.ts";
import { cniBinDirs } from "../tests/_support/cni_networks.ts";
import { connect, type CriClient } from "../tests/_support/cri_client.ts";
import { busyboxImage, ociLayoutArchive } from "../tests/_support/oci_images.ts";

/** A private containerd with its CRI plugin, for side-by-side numbers; undefined if absent. */
export async function startContainerd(dir: string, sandboxImage: string) {
  const bin = ["containerd", "runc", "ctr"].map((b) => which(b));
  if (bin.some((b) => b === undefined)) return undefined;
  const socket = `${dir}/containerd.sock`;
  const config = `${dir}/containerd.toml`;
  Deno.writeTextFileSync(
    config,
    `version = 2
root = "${dir}/root"
state = "${dir}/state"
[grpc]
  address = "${socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${sandboxImage}"
  restrict_oom_score_adj = true
  enable_cdi = false
[plugins."io.containerd.grpc.v1.cri".cni]
  conf_dir = "${dir}/cni-conf"
  bin_dir = "${dirname(findPlugin("bridge", cniBinDirs) ?? "/usr/lib/cni/bridge")}"
`,
  );
  const spawn = async () => {
    const process = new Deno.Command(bin[0]!, {
      args: ["--config", config],
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 200; i++) {
      try {
        Deno.statSync(socket);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return process;
  };
  let child = await spawn();
  return {
    socket,
    /**
     * SIGTERM and a new containerd; its shims (and containers) keep running meanwhile.
     * Returns when the new one was spawned (performance.now()).
     */
    async restart(): Promise<number> {
      child.kill("SIGTERM");
      await child.status;
      try {
        Deno.removeSync(socket);
      } catch {
        // removed by containerd itself on SIGTERM
      }
      const spawnedAt = performance.now();
      child = await spawn();
      return spawnedAt;
    },
    async import(archive: string) {
      const out = await new Deno.Command(bin[2]!, {
        args: ["-a", socket, "-n", "k8s.io", "images", "import", archive],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
    },
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      // Shims outlive containerd by design; the benchmark removed its pods, so none is left.
      // Its snapshot and shm mounts stay until unmounted.
      const mounts = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
        .map((line) => line.split(" ")[4]).filter((m) => m?.startsWith(dir)).reverse();
      for (const mount of mounts) {
        await new Deno.Command("umount", { args: ["-l", mount!], stderr: "null" }).output();
      }
    },
  };
}

function which(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      Deno.statSync(`${dir}/${name}`);
      return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** containerd with the same image (and a sleeping busybox as its pause image), if installed. */
export async function startPeer(dir: string) {
  Deno.mkdirSync(dir, { recursive: true });
  const pause = "pve-cri.bench/pause:1";
  const containerd = await startContainerd(dir, pause);
  if (containerd === undefined) return undefined;
  try {
    const image = "docker.io/library/busybox:1.36";
    const busybox = `${dir}/busybox.tar`;
    Deno.writeFileSync(busybox, ociLayoutArchive(busyboxImage(), image));
    await containerd.import(busybox);
    const pauseArchive = `${dir}/pause.tar`;
    Deno.writeFileSync(
      pauseArchive,
      ociLayoutArchive(busyboxImage({ Cmd: ["/bin/sleep", "2147483647"] }), pause),
    );
    await containerd.import(pauseArchive);
    let cri = await connect(containerd.socket);
    return {
      dir,
      image,
      get cri(): CriClient {
        return cri;
      },
      /** Restarts containerd; resolves once the socket is back, with when it was spawned. */
      async restart(): Promise<number> {
        cri.close();
        const spawnedAt = await containerd.restart();
        cri = await connect(containerd.socket);
        return spawnedAt;
      },
      async stop() {
        cri.close();
        await containerd.stop();
      },
    };
  } catch (error) {
    await containerd.stop();
    throw error;
  }
}
