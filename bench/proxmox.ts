/**
 * Proxmox client + simulator: create, start, stop and destroy 1,000 CTs over HTTPS, each call
 * timed from the request until its task has stopped. Prints `proxmox.call_p50`/`_p99` over
 * all calls and the p99 of each operation (ms). No injected latency; simulator embedded in
 * this process, as `deno task start` embeds it.
 */
import { type Benchmark, percentile, round } from "./bench.ts";
import { createProxmoxClient } from "../adapters/proxmox/mod.ts";
import { startSimulator } from "../adapters/proxmox/sim/mod.ts";
import { silentLogger } from "../lib/log.ts";

const count = 1000;
const operations = ["create", "start", "stop", "destroy"] as const;

export const benchmarks: Benchmark[] = [{
  results: ["proxmox.call_p50", "proxmox.call_p99", ...operations.map((op) => `proxmox.${op}_p99`)],
  async run({ emit }) {
    const dir = Deno.makeTempDirSync({ prefix: "pve-cri-bench-proxmox-" });
    const sim = await startSimulator({
      stateDir: dir,
      storages: [{ id: "local", type: "dir", content: ["vztmpl", "rootdir"] }],
    });
    const client = createProxmoxClient({
      url: sim.url,
      node: sim.node,
      auth: { tokenId: sim.token.tokenid, secret: sim.token.secret },
      tls: { caPem: sim.caPem },
      logger: silentLogger,
    });
    try {
      Deno.mkdirSync(`${dir}/storage/local/template/cache`, { recursive: true });
      Deno.writeTextFileSync(`${dir}/storage/local/template/cache/bench.tar.zst`, "template");
      const samples: Record<(typeof operations)[number], number[]> = {
        create: [],
        start: [],
        stop: [],
        destroy: [],
      };
      const timed = async (op: (typeof operations)[number], call: () => Promise<string>) => {
        const started = performance.now();
        await client.waitForTask(await call());
        samples[op].push(performance.now() - started);
      };
      for (let i = 0; i < count; i++) {
        const vmid = 100 + i;
        await timed(
          "create",
          () =>
            client.createCt({ vmid, ostemplate: "local:vztmpl/bench.tar.zst", rootfs: "local:1" }),
        );
        await timed("start", () => client.startCt({ vmid }));
        await timed("stop", () => client.stopCt({ vmid }));
        await timed("destroy", () => client.destroyCt({ vmid }));
      }
      const all = operations.flatMap((op) => samples[op]).sort((a, b) => a - b);
      const extra = { cts: count, calls: all.length, transport: "https" };
      emit({ bench: "proxmox.call_p50", value: round(percentile(all, 50)), unit: "ms", ...extra });
      emit({ bench: "proxmox.call_p99", value: round(percentile(all, 99)), unit: "ms", ...extra });
      for (const op of operations) {
        const sorted = samples[op].sort((a, b) => a - b);
        emit({
          bench: `proxmox.${op}_p99`,
          value: round(percentile(sorted, 99)),
          unit: "ms",
          p50: round(percentile(sorted, 50)),
          cts: count,
        });
      }
    } finally {
      client.close();
      await sim.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
}];
