// deno-lint-ignore-file no-console
/**
 * `deno task fuzz [N] [--seed S] [--seconds T] [--connections C]`: N generated and mutated CRI
 * requests (default 100,000, stopping after T seconds, default 600) over the real socket
 * against the memory backend. Prints one JSON summary line; exit 1 on a crash, a hang or an
 * unclean `replay --verify`.
 */
import { parseArgs } from "node:util";
import { runFuzz } from "./run.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    seed: { type: "string" },
    seconds: { type: "string", default: "600" },
    connections: { type: "string", default: "8" },
  },
});
const dir = Deno.makeTempDirSync({ prefix: "pve-cri-fuzz-" });
try {
  const summary = await runFuzz({
    calls: Number(positionals[0] ?? 100_000),
    seed: Number(values.seed ?? Date.now() % 1_000_000),
    maxSeconds: Number(values.seconds),
    connections: Number(values.connections),
    dir,
  });
  console.log(JSON.stringify(summary));
  Deno.exitCode = summary.crashes + summary.hangs > 0 || summary.verify !== "clean" ? 1 : 0;
} finally {
  Deno.removeSync(dir, { recursive: true });
}
