/**
 * The CRI endpoint through its socket, server in its own process as the kubelet sees it:
 * `cri.version_p50`/`_p99` over 5,000 Version calls on one connection (grpc-js client), and
 * `cri.list_containers_10k_p50` (ms, encoding and the client's decoding included).
 */
import { connect } from "../tests/_support/cri_client.ts";
import { type Benchmark, percentile, round } from "./bench.ts";

const CALLS = 5_000;
const WARMUP = 500;
const CONTAINERS = 10_000;
const LISTS = 20;
const server = new URL("./cri_server_child.ts", import.meta.url).pathname;

export const benchmarks: Benchmark[] = [{
  results: ["cri.version_p50", "cri.version_p99", "cri.list_containers_10k_p50"],
  async run({ emit, wants }) {
    const dir = Deno.makeTempDirSync({ prefix: "pve-cri-bench-cri-" });
    const socketPath = `${dir}/cri.sock`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", server, socketPath, String(CONTAINERS)],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      const { value } = await reader.read();
      if (value?.trim() !== "ready") throw new Error(`CRI server did not start: ${value}`);
      const client = await connect(socketPath);
      try {
        if (wants("cri.version")) {
          for (let i = 0; i < WARMUP; i++) await client.runtime.Version({});
          const samples: number[] = [];
          for (let i = 0; i < CALLS; i++) {
            const started = performance.now();
            await client.runtime.Version({});
            samples.push(performance.now() - started);
          }
          samples.sort((a, b) => a - b);
          const extra = { calls: CALLS, client: "grpc-js", transport: "unix socket" };
          emit({
            bench: "cri.version_p50",
            value: round(percentile(samples, 50)),
            unit: "ms",
            ...extra,
          });
          emit({
            bench: "cri.version_p99",
            value: round(percentile(samples, 99)),
            unit: "ms",
            ...extra,
          });
        }
        if (wants("cri.list_containers_10k_p50")) {
          const samples: number[] = [];
          for (let i = 0; i < LISTS + 3; i++) {
            const started = performance.now();
            const { containers } = await client.runtime.ListContainers({});
            if (containers.length !== CONTAINERS) throw new Error("ListContainers came back short");
            if (i >= 3) samples.push(performance.now() - started); // the first ones warm up
          }
          samples.sort((a, b) => a - b);
          emit({
            bench: "cri.list_containers_10k_p50",
            value: round(percentile(samples, 50)),
            unit: "ms",
            p99: round(percentile(samples, 99)),
            calls: LISTS,
            client: "grpc-js",
          });
        }
      } finally {
        client.close();
      }
    } finally {
      child.kill("SIGKILL");
      await child.status;
      await reader.cancel().catch(() => {});
      Deno.removeSync(dir, { recursive: true });
    }
  },
}];
