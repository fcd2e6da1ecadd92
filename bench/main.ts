// deno-lint-ignore-file no-console
/**
 * `deno task bench [PREFIX]`: runs the benchmarks whose result names start with PREFIX and
 * prints one JSON object per line on stdout.
 */
import type { Benchmark } from "./bench.ts";

const modules: (() => Promise<{ benchmarks: Benchmark[] }>)[] = [
  () => import("./store.ts"),
  () => import("./proxmox.ts"),
  () => import("./cri.ts"),
];

const prefix = Deno.args[0] ?? "";
const wants = (name: string) => name.startsWith(prefix);

for (const load of modules) {
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
