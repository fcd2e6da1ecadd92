/**
 * Image benchmarks: a ~55 MB image of 5 gzip layers (random bytes: they do not compress) on a
 * loopback registry (Debian's docker-registry), in the same run, alternating, medians of five:
 *
 * - `images.pull_mbps`: pve-cri's pull, the same job as `skopeo copy docker://… oci:DIR`
 *   (`images.skopeo_mbps`): resolve the reference, fetch every blob into the content store,
 *   each checked against its digest and synced. pve-cri's own registry client and content
 *   store, the code PullImage runs, in this process with nothing else running.
 * - `images.pullimage_mbps`: PullImage through the socket, what the kubelet waits for: the same
 *   pull and, at the same time, the image's OCI archive sent to Proxmox's template storage.
 *   Proxmox runs as its own process, as on a node (a standalone simulator, `--backend
 *   proxmox`); `images.pullimage_fetch_mbps` is the same calls until their last blob was stored.
 * - `images.pull_peak_rss`: the server's peak memory above idle during a PullImage.
 * - `images.import_mbps`: the same image imported from a 55 MB OCI archive.
 */
import { statusKb } from "../tests/_support/proc_status.ts";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import {
  CRI_PROTO_PATH,
  IMAGE_TOOL_PROTO_PATH,
  PROTO_LOADER_OPTIONS,
} from "../adapters/cri/rpc.ts";
import { ContentStore } from "../adapters/oci/content_store.ts";
import { ociManifestBytes } from "../adapters/oci/manifest.ts";
import { parseImageReference } from "../adapters/oci/reference.ts";
import { sha256Digest } from "../adapters/oci/digest.ts";
import { pullLayers, RegistryClient, RegistryHosts } from "../adapters/registry/mod.ts";
import { buildImage, ociLayoutArchive, randomBytes } from "../tests/_support/oci_images.ts";
import { registryMissing, skopeoMissing, startRegistry } from "../tests/_support/registry.ts";
import { type ServerProcess, startServer } from "../tests/_support/server_process.ts";
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
    "images.pullimage_mbps",
    "images.pullimage_fetch_mbps",
    "images.pullimage_vs_skopeo",
    "images.pull_peak_rss",
    "images.import_mbps",
  ],
  run: images,
}];

/** A process's resident set, and its peak since the last reset, in bytes (Linux). */
function memory(pid: number): { rss: number; peak: number } {
  return { rss: statusKb(pid, "VmRSS") * 1024, peak: statusKb(pid, "VmHWM") * 1024 };
}

/** Starts the peak over from the current resident set (`clear_refs` 5). */
function resetPeak(pid: number): void {
  Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
}

/** pve-cri's pull into a fresh content store: resolve, manifest and config, the layers. */
async function pullOnce(reference: string, dir: string): Promise<number> {
  const client = new RegistryClient({ hosts: new RegistryHosts() });
  const started = performance.now();
  const repository = client.repository(parseImageReference(reference));
  const signal = new AbortController().signal;
  const resolved = await repository.resolve(signal);
  const content = ContentStore.open(dir);
  const manifest = ociManifestBytes(resolved.manifest);
  await content.put({ digest: sha256Digest(manifest), size: manifest.length }, manifest);
  await content.put(resolved.config.descriptor, resolved.config.bytes);
  await pullLayers(content, repository, resolved.manifest.layers, { signal });
  const seconds = (performance.now() - started) / 1000;
  Deno.removeSync(dir, { recursive: true });
  return seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** A standalone simulator process (Proxmox is its own process on a node) and its config file. */
async function standaloneProxmox(dir: string): Promise<{ config: string; stop(): Promise<void> }> {
  const config = `${dir}/pve.json`;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../adapters/proxmox/sim/main.ts", import.meta.url).pathname,
      "--listen",
      `127.0.0.1:${port}`,
      "--state-dir",
      `${dir}/proxmox`,
      "--config-out",
      config,
    ],
    stdout: "piped",
    stderr: "inherit",
    env: { PVE_CRI_LOG: "error" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\nca: ")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the simulator exited: ${out}`);
    out += value;
  }
  void (async () => {
    while (!(await reader.read()).done) { /* keep stdout flowing */ }
  })().catch(() => {});
  return {
    config,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

interface Clients {
  unary(method: string, request: unknown): Promise<Message>;
  /** A pull or import through the ImageTool, timed: when the content was stored, when done. */
  tool(method: "Pull" | "Import", request: unknown): Promise<{ fetched: number; done: number }>;
  close(): void;
}

function clients(server: ServerProcess): Clients {
  const definition = grpc.loadPackageDefinition(
    loadSync([CRI_PROTO_PATH, IMAGE_TOOL_PROTO_PATH], PROTO_LOADER_OPTIONS),
  ) as Message;
  const address = `unix://${server.socket}`;
  const credentials = grpc.credentials.createInsecure();
  const cri = new definition.runtime.v1.ImageService(address, credentials);
  const tool = new definition.pvecri.v1.ImageTool(address, credentials);
  return {
    unary: (method, request) =>
      new Promise((resolve, reject) =>
        cri[method](request, (e: Error | null, r: Message) => e ? reject(e) : resolve(r))
      ),
    tool: (method, request) =>
      new Promise((resolve, reject) => {
        const started = performance.now();
        let layers = 0;
        const stored = new Set<string>();
        let fetched = 0;
        const call = tool[method](request);
        call.on("data", (message: Message) => {
          if (message.resolved) layers = message.resolved.layers.length;
          if (message.layer && message.layer.done === message.layer.total) {
            stored.add(message.layer.digest);
            if (stored.size === layers) fetched = performance.now() - started;
          }
        });
        call.on("error", reject);
        call.on("end", () => resolve({ fetched, done: performance.now() - started }));
      }),
    close() {
      cri.close();
      tool.close();
    },
  };
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
  const proxmox = await standaloneProxmox(dir);
  const server = await startServer({
    dir,
    backend: "proxmox",
    config: proxmox.config,
    env: { PVE_CRI_LOG: "error" },
  });
  const c = clients(server);
  const pid = server.child.pid;
  try {
    // Warm-up: the first pulls compile the code; not measured.
    await c.tool("Pull", { reference });
    await c.unary("RemoveImage", { image: { image: reference } });
    await pullOnce(reference, `${dir}/warm`);
    const pulls: number[] = [];
    const pullImages: number[] = [];
    const fetches: number[] = [];
    const skopeos: number[] = [];
    const peaks: number[] = [];
    let idle = 0;
    for (let r = 0; r < rounds; r++) {
      (globalThis as { gc?: () => void }).gc?.();
      idle = memory(pid).rss;
      resetPeak(pid);
      const timed = await c.tool("Pull", { reference });
      pullImages.push(timed.done / 1000);
      fetches.push(timed.fetched / 1000);
      peaks.push(memory(pid).peak - idle);
      await c.unary("RemoveImage", { image: { image: reference } });

      const target = `${dir}/skopeo-${r}`;
      const started = performance.now();
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
      skopeos.push((performance.now() - started) / 1000);
      if (out.code !== 0) throw new Error(`skopeo: ${new TextDecoder().decode(out.stderr)}`);
      Deno.removeSync(target, { recursive: true });

      pulls.push(await pullOnce(reference, `${dir}/content-${r}`));
    }
    const pull = mb / median(pulls);
    const pullImage = mb / median(pullImages);
    const fetch = mb / median(fetches);
    const skopeo = mb / median(skopeos);
    const common = { image_mb: round(mb, 1), layers: layerCount, rounds };
    const seconds = (values: number[]) => values.map((s) => round(s, 3));
    emit({
      bench: "images.pull_mbps",
      value: round(pull, 1),
      unit: "MB/s",
      ...common,
      seconds: seconds(pulls),
      includes: "resolve; fetch every blob into the content store, checked and synced",
    });
    emit({
      bench: "images.skopeo_mbps",
      value: round(skopeo, 1),
      unit: "MB/s",
      ...common,
      seconds: seconds(skopeos),
      command: "skopeo copy docker://… oci:DIR (fetch, verify, fdatasync)",
    });
    emit({
      bench: "images.pull_vs_skopeo",
      value: round(pull / skopeo, 2),
      unit: "ratio",
      target: ">= 1.2",
    });
    emit({
      bench: "images.pullimage_mbps",
      value: round(pullImage, 1),
      unit: "MB/s",
      ...common,
      seconds: seconds(pullImages),
      includes: "PullImage over the socket: the pull, and the OCI archive sent at the same " +
        "time to a Proxmox (simulator) process's template storage",
    });
    emit({
      bench: "images.pullimage_fetch_mbps",
      value: round(fetch, 1),
      unit: "MB/s",
      ...common,
      seconds: seconds(fetches),
      includes: "the same PullImage calls, until their last blob was checked, synced and stored",
    });
    emit({
      bench: "images.pullimage_vs_skopeo",
      value: round(pullImage / skopeo, 2),
      unit: "ratio",
      note: "PullImage also sends the archive to Proxmox, which skopeo's oci:DIR copy does not",
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
        const timed = await c.tool("Import", { path: archive, name: "bench/imported:v1" });
        imports.push(timed.done / 1000);
        await c.unary("RemoveImage", { image: { image: "bench/imported:v1" } });
      }
      emit({
        bench: "images.import_mbps",
        value: round(archiveMb / median(imports), 1),
        unit: "MB/s",
        archive_mb: round(archiveMb, 1),
        seconds: seconds(imports),
      });
    }
  } finally {
    c.close();
    await server.stop("SIGTERM");
    await proxmox.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}
