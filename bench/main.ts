// deno-lint-ignore-file no-console
/**
 * `deno task bench [PREFIX]`: runs the benchmarks whose result names start with PREFIX and
 * prints one JSON object per line on stdout. Each suite runs in a process of its own: the
 * store suite leaves ~200 MB of heap behind, and in the same process its collection landed
 * inside the CRI suite's client-side timings.
 */
import type { Benchmark } from "./bench.ts";

const suites: Record<string, () => Promise<{ benchmarks: Benchmark[] }>> = {
  store: () => import("./store.ts"),
  proxmox: () => import("./proxmox.ts"),
  cri: () => import("./cri.ts"),
  images: () => import("./images.ts"),
  lxc: () => import("./lxc.ts"),
  cni: () => import("./cni.ts"),
  recovery: () => import("./recovery.ts"),
  h2: () => import("./h2.ts"),
};

const [prefix = "", suite] = Deno.args;

if (prefix === "--help" || prefix === "-h") {
  console.log(`Usage: deno task bench [PREFIX]

Runs the benchmarks whose result names start with PREFIX (all without one), each suite in a
process of its own, and prints one JSON object per result on stdout. Suites: ${
    Object.keys(suites).join(", ")
  }.`);
  Deno.exit(0);
}

if (suite === undefined) {
  for (const name of Object.keys(suites)) {
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--v8-flags=--expose-gc", import.meta.filename!, prefix, name],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (code !== 0) Deno.exit(code);
  }
} else {
  const load = suites[suite];
  if (load === undefined) throw new Error(`no benchmark suite "${suite}"`);
  const wants = (name: string) => name.startsWith(prefix);
  const { benchmarks } = await load();
  for (const benchmark of benchmarks) {
    if (!benchmark.results.some(wants)) continue;
    await benchmark.run({
      wants,
      emit: (result) => {
        if (wants(result.bench)) console.log(JSON.stringify(result));
      },
    });
  }
}
