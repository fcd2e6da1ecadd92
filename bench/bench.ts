/** One line of benchmark output: `{"bench": NAME, "value": NUMBER, "unit": UNIT, …}`. */
export interface BenchResult {
  bench: string;
  value: number;
  unit: string;
  [extra: string]: unknown;
}

export interface BenchContext {
  /** Prints one result (if it was asked for). */
  emit(result: BenchResult): void;
  /** Whether a result name was asked for: skip the work for those that were not. */
  wants(name: string): boolean;
}

/** A benchmark module's entry. */
export interface Benchmark {
  /** Names of the results it can print; a prefix given to `deno task bench` selects them. */
  results: readonly string[];
  run(context: BenchContext): Promise<void>;
}

/** Percentile of already-sorted samples (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
