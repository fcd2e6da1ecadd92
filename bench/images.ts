/**
 * Image benchmarks: a ~50 MB image of 5 gzip layers (random bytes: they do not compress) on a
 * loopback registry (Debian's docker-registry), pulled by pve-cri through the CRI socket and by
 * `skopeo copy docker://… oci:DIR` in the same run, alternating; the server's peak memory
 * above idle during a pull; an import of the same image as a 50 MB OCI archive.
 *
 * pve-cri's pull is PullImage as the kubelet waits for it: resolved, every blob fetched and
 * verified into the content store and synced, and the OCI archive uploaded to the Proxmox
 * template storage (the embedded simulator). skopeo's is the same fetch into an OCI layout.
 */
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import {
  CRI_PROTO_PATH,
  IMAGE_TOOL_PROTO_PATH,
  PROTO_LOADER_OPTIONS,
} from "../adapters/cri/rpc.ts";
import { buildImage, ociLayoutArchive, randomBytes } from "../tests/_support/oci_images.ts";
import { registryMissing, startRegistry } from "../tests/_support/registry.ts";
import { startServer } from "../tests/_support/server_process.ts";
import { type BenchContext, type Benchmark, round } from "./bench.ts";

const layerCount = 5;
const layerBytes = 10 * 1024 * 1024;
const rounds = 5;

// deno-lint-ignore no-explicit-any
type Message = any;

export const benchmarks: Benchmark[] = [{
  results: [
    "images.pull_mbps",
    "images.skopeo_mbps",
    "images.pull_vs_skopeo",
    "images.pull_peak_rss",
    "images.import_mbps",
  ],
  run: images,
}];

function skopeoMissing(): string | undefined {
  try {
    return Deno.statSync("/usr/bin/skopeo").isFile ? undefined : "skopeo is not installed";
  } catch {
    return "skopeo is not installed";
  }
}

/** A process's resident set, and its peak since the last reset, in bytes (Linux). */
function memory(pid: number): { rss: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") * 1024, peak: kb("VmHWM") * 1024 };
}

/** Starts the peak over from the current resident set (`clear_refs` 5). */
function resetPeak(pid: number): void {
  Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function images({ emit, wants }: BenchContext): Promise<void> {
  const missing = registryMissing() ?? skopeoMissing();
  if (missing !== undefined) {
    emit({ bench: "images.pull_mbps", value: NaN, unit: "MB/s", skipped: missing });
    return;
  }
  const image = buildImage({
    layers: Array.from({ length: layerCount }, (_, i) => ({
      files: { [`data-${i}`]: { data: randomBytes(layerBytes) } },
    })),
    config: { Cmd: ["/bin/sh"] },
  });
  const bytes = image.config.size + image.layers.reduce((sum, l) => sum + l.size, 0);
  const mb = bytes / 1e6;
  await using registry = await startRegistry();
  await registry.push("bench/big", "v1", image);
  const reference = `${registry.host}/bench/big:v1`;
  const dir = Deno.makeTempDirSync({ prefix: "pve-cri-bench-images-" });
  const server = await startServer({ dir, env: { PVE_CRI_LOG: "error" } });
  const definition = grpc.loadPackageDefinition(
    loadSync([CRI_PROTO_PATH, IMAGE_TOOL_PROTO_PATH], PROTO_LOADER_OPTIONS),
  ) as Message;
  const address = `unix://${server.socket}`;
  const credentials = grpc.credentials.createInsecure();
  const cri = new definition.runtime.v1.ImageService(address, credentials);
  const tool = new definition.pvecri.v1.ImageTool(address, credentials);
  const unary = (method: string, request: unknown) =>
    new Promise<Message>((resolve, reject) =>
      cri[method](request, (e: Error | null, r: Message) => e ? reject(e) : resolve(r))
    );
  const pid = server.child.pid;
  try {
    // Warm-up: the server's first pull compiles its code; not measured.
    await unary("PullImage", { image: { image: reference } });
    await unary("RemoveImage", { image: { image: reference } });
    const pulls: number[] = [];
    const skopeos: number[] = [];
    const peaks: number[] = [];
    let idle = 0;
    for (let r = 0; r < rounds; r++) {
      (globalThis as { gc?: () => void }).gc?.();
      idle = memory(pid).rss;
      resetPeak(pid);
      const started = performance.now();
      await unary("PullImage", { image: { image: reference } });
      pulls.push((performance.now() - started) / 1000);
      peaks.push(memory(pid).peak - idle);
      await unary("RemoveImage", { image: { image: reference } });

      const target = `${dir}/skopeo-${r}`;
      const skopeoStarted = performance.now();
      const out = await new Deno.Command("/usr/bin/skopeo", {
        args: [
          "copy",
          "--quiet",
          "--src-tls-verify=false",
          `docker://${reference}`,
          `oci:${target}:v1`,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      skopeos.push((performance.now() - skopeoStarted) / 1000);
      if (out.code !== 0) throw new Error(`skopeo: ${new TextDecoder().decode(out.stderr)}`);
      Deno.removeSync(target, { recursive: true });
    }
    const pull = mb / median(pulls);
    const skopeo = mb / median(skopeos);
    const common = { image_mb: round(mb, 1), layers: layerCount, rounds };
    emit({
      bench: "images.pull_mbps",
      value: round(pull, 1),
      unit: "MB/s",
      ...common,
      seconds: pulls.map((s) => round(s, 3)),
      includes: "resolve, fetch and verify, sync, OCI archive uploaded to the template storage",
    });
    emit({
      bench: "images.skopeo_mbps",
      value: round(skopeo, 1),
      unit: "MB/s",
      ...common,
      seconds: skopeos.map((s) => round(s, 3)),
      command: "skopeo copy docker://… oci:DIR",
    });
    emit({
      bench: "images.pull_vs_skopeo",
      value: round(pull / skopeo, 2),
      unit: "ratio",
      target: ">= 1.2",
    });
    emit({
      bench: "images.pull_peak_rss",
      value: round(Math.max(...peaks) / 1e6, 1),
      unit: "MB",
      target: "< 64 above idle",
      idle_rss_mb: round(idle / 1e6, 1),
      per_round_mb: peaks.map((p) => round(p / 1e6, 1)),
    });

    if (wants("images.import_mbps")) {
      const archive = `${dir}/big.tar`;
      Deno.writeFileSync(archive, ociLayoutArchive(image));
      const archiveMb = Deno.statSync(archive).size / 1e6;
      const imports: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const started = performance.now();
        await new Promise<void>((resolve, reject) => {
          const call = tool.Import({ path: archive, name: "bench/imported:v1" });
          call.on("data", () => {});
          call.on("error", reject);
          call.on("end", resolve);
        });
        imports.push((performance.now() - started) / 1000);
        await unary("RemoveImage", { image: { image: "bench/imported:v1" } });
      }
      emit({
        bench: "images.import_mbps",
        value: round(archiveMb / median(imports), 1),
        unit: "MB/s",
        archive_mb: round(archiveMb, 1),
        seconds: imports.map((s) => round(s, 3)),
      });
    }
  } finally {
    cri.close();
    tool.close();
    await server.stop("SIGTERM");
    Deno.removeSync(dir, { recursive: true });
  }
}
