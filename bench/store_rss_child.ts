// deno-lint-ignore-file no-console
/**
 * Opens the registry on a log (every live stream's actor loaded) in a fresh process and
 * prints its resident memory after GC, in MB.
 */
import type { AdapterEffectHandlers } from "../machines/effects.ts";
import { containerEffectNames, imageEffectNames, sandboxEffectNames } from "../machines/effects.ts";
import { Registry } from "../machines/registry.ts";
import { openBenchStore } from "./store_log.ts";

// Every stream in the bench log is settled: nothing resumes, no effect runs.
const idle = async () => {};
const effects = {
  sandbox: Object.fromEntries(sandboxEffectNames.map((n) => [n, idle])),
  container: Object.fromEntries(containerEffectNames.map((n) => [n, idle])),
  image: Object.fromEntries(imageEffectNames.map((n) => [n, idle])),
} as unknown as AdapterEffectHandlers;

const store = openBenchStore(Deno.args[0]!);
const registry = Registry.open({ store, effects });
const gc = (globalThis as { gc?: () => void }).gc;
for (let i = 0; i < 3; i++) gc?.();
const loaded = registry.actors().length;
if (loaded === 0) throw new Error("no actors loaded");
console.log(Deno.memoryUsage().rss / (1024 * 1024));
registry.close();
store.close();
