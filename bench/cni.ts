/**
 * Pod networking's cost: ADD and DEL through pve-cri's CNI adapter (config, VERSION check,
 * chain with prevResult, result cache) for bridge + host-local, beside the same plugin run
 * directly the way `cnitool` runs it, in the same run and the same kind of namespace. The
 * ratio is pve-cri's overhead over the plugins themselves.
 */
import { CniNetwork } from "../adapters/cni/cni_network.ts";
import { findPlugin } from "../adapters/cni/plugin_exec.ts";
import { tempDir } from "../tests/_support/temp_dir.ts";
import { type BenchContext, type Benchmark, percentile, round } from "./bench.ts";
import { runTool } from "../adapters/node/run_tool.ts";
import { bridgeNetwork, cniBinDirs } from "../tests/_support/cni_networks.ts";

const binDirs = cniBinDirs;
const rounds = 40;
const warmup = 5;

/** The plugin exec'd by hand, as cnitool does: env, config on stdin, nothing else. */
async function direct(
  command: "ADD" | "DEL",
  config: Record<string, unknown>,
  id: string,
  netns: string,
) {
  const child = new Deno.Command(findPlugin("bridge", binDirs)!, {
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: netns,
      CNI_IFNAME: "eth0",
      CNI_PATH: binDirs.join(":"),
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(config)));
  await writer.close();
  const out = await child.output();
  if (out.code !== 0) throw new Error(`bridge ${command}: ${new TextDecoder().decode(out.stdout)}`);
}

async function cniBench(context: BenchContext) {
  const why = Deno.uid() !== 0
    ? "needs root"
    : ["bridge", "host-local"].find((p) => findPlugin(p, binDirs) === undefined);
  if (why !== undefined) {
    context.emit({ bench: "cni.skipped", value: 1, unit: "", reason: why });
    return;
  }
  using dir = tempDir("pve-cri-bench-cni-");
  const network = (name: string, bridge: string, subnet: string) =>
    bridgeNetwork({ name, bridge, subnet, dataDir: `${dir.path}/ipam` });
  const confDir = `${dir.path}/net.d`;
  Deno.mkdirSync(confDir);
  Deno.writeTextFileSync(
    `${confDir}/10-bench.conflist`,
    JSON.stringify(network("bench", "pcbcni0", "10.88.252.0/24")),
  );
  const directConfig = {
    ...network("direct", "pcbcni1", "10.88.253.0/24").plugins[0],
    cniVersion: "1.0.0",
    name: "direct",
  };
  const netns = `${dir.path}/netns`;
  Deno.writeFileSync(netns, new Uint8Array());
  await runTool("unshare", [`--net=${netns}`, "true"]);
  const cni = new CniNetwork({ confDir, binDirs, cacheDir: `${dir.path}/results` });
  const samples = {
    add: [] as number[],
    del: [] as number[],
    dadd: [] as number[],
    ddel: [] as number[],
  };
  const timed = async (list: number[], i: number, call: () => Promise<unknown>) => {
    const start = performance.now();
    await call();
    if (i >= warmup) list.push(performance.now() - start);
  };
  try {
    for (let i = 0; i < warmup + rounds; i++) {
      // Alternating, so a drift in the machine's load falls on both alike.
      const request = { sandboxId: `bench${i}`, netns, name: "bench", ifname: "eth0" };
      await timed(samples.add, i, () => cni.add(request));
      await timed(samples.del, i, () => cni.del(request));
      await timed(samples.dadd, i, () => direct("ADD", directConfig, `direct${i}`, netns));
      await timed(samples.ddel, i, () => direct("DEL", directConfig, `direct${i}`, netns));
    }
  } finally {
    await runTool("umount", [netns]).catch(() => {});
    for (const bridge of ["pcbcni0", "pcbcni1"]) {
      await runTool("ip", ["link", "del", bridge]).catch(() => {});
    }
  }
  for (const list of Object.values(samples)) list.sort((a, b) => a - b);
  const p50 = (list: number[]) => percentile(list, 50);
  context.emit({ bench: "cni.add_p50", value: round(p50(samples.add), 1), unit: "ms" });
  context.emit({ bench: "cni.del_p50", value: round(p50(samples.del), 1), unit: "ms" });
  context.emit({ bench: "cni.direct_add_p50", value: round(p50(samples.dadd), 1), unit: "ms" });
  context.emit({ bench: "cni.direct_del_p50", value: round(p50(samples.ddel), 1), unit: "ms" });
  context.emit({
    bench: "cni.add_vs_direct",
    value: round(p50(samples.add) / p50(samples.dadd), 2),
    unit: "ratio",
  });
  context.emit({
    bench: "cni.del_vs_direct",
    value: round(p50(samples.del) / p50(samples.ddel), 2),
    unit: "ratio",
  });
}

export const benchmarks: Benchmark[] = [{
  results: [
    "cni.add_p50",
    "cni.del_p50",
    "cni.direct_add_p50",
    "cni.direct_del_p50",
    "cni.add_vs_direct",
    "cni.del_vs_direct",
  ],
  run: cniBench,
}];
