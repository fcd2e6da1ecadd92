// deno-lint-ignore-file no-console
/**
 * `deno task fuzz [N] [--seed S] [--seconds T] [--connections C]`: N generated and mutated CRI
 * requests (default 100,000, stopping after T seconds, default 600) over the real socket
 * against the memory backend. Prints one JSON summary line; exit 1 on a crash, a hang, an
 * unclean `replay --verify` or memory that does not return to its baseline.
 */
import { parseCommandLine } from "../lib/command_line.ts";
import { runFuzz } from "./run.ts";

let line;
try {
  line = parseCommandLine(Deno.args, {
    seed: { type: "string" },
    seconds: { type: "string", default: "600" },
    connections: { type: "string", default: "8" },
  });
} catch (error) {
  console.error(`pve-cri fuzz: ${(error as Error).message}`);
  Deno.exit(2);
}
if (line.help) {
  console.log(`Usage: deno task fuzz [N] [--seed S] [--seconds T] [--connections C]

Sends N generated and mutated CRI requests (default 100,000; at most T seconds, default 600;
C connections at once, default 8) to deno task start on the memory backend, and prints one
JSON summary line. Exit status: 0 clean; 1 a crash, a hang, an unclean replay --verify, or
the server's JS heap not back within 10% of its baseline (RSS within 20%) once the calls'
pods are removed and its garbage collected.`);
  Deno.exit(0);
}
const { values, positionals } = line;
/** A whole number from the command line, at least `min`; exit 2 naming it otherwise. */
function count(text: string, what: string, min: number): number {
  const n = Number(text);
  if (/^\d+$/.test(text) && n >= min) return n;
  console.error(`pve-cri fuzz: ${what} must be a whole number of at least ${min}, not "${text}"`);
  Deno.exit(2);
}
const calls = count(positionals[0] ?? "100000", "N (calls)", 0);
const seed = count(values.seed ?? String(Date.now() % 1_000_000), "--seed", 0);
const maxSeconds = count(values.seconds!, "--seconds", 1);
const connections = count(values.connections!, "--connections", 1);
const dir = Deno.makeTempDirSync({ prefix: "pve-cri-fuzz-" });
try {
  const summary = await runFuzz({ calls, seed, maxSeconds, connections, dir });
  console.log(JSON.stringify(summary));
  const clean = summary.crashes + summary.hangs === 0 && summary.verify === "clean" &&
    summary.rssReturned && summary.heapReturned;
  Deno.exitCode = clean ? 0 : 1;
} finally {
  Deno.removeSync(dir, { recursive: true });
}
