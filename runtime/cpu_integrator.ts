/**
 * Cumulative CPU time from Proxmox's instantaneous usage. PVE reports `cpu` as a 0–1 fraction
 * of the CT's `cpus`; the CRI wants `usage_core_nano_seconds`, a counter. Each sample adds
 * (cores busy) × (time since the last sample); the total is a BigInt so int64 nanoseconds
 * never pass through a JS number.
 */
export class CpuIntegrator {
  readonly #state = new Map<string, { at: number; totalNs: bigint }>();

  /** Adds a sample (`coresBusy` = fraction × cpus) taken at `at` (ms); returns the total. */
  sample(id: string, at: number, coresBusy: number): bigint {
    const previous = this.#state.get(id);
    let totalNs = previous?.totalNs ?? 0n;
    if (previous !== undefined && at > previous.at && Number.isFinite(coresBusy) && coresBusy > 0) {
      totalNs += BigInt(Math.round(coresBusy * (at - previous.at) * 1e6));
    }
    this.#state.set(id, { at, totalNs });
    return totalNs;
  }

  total(id: string): bigint {
    return this.#state.get(id)?.totalNs ?? 0n;
  }

  forget(id: string): void {
    this.#state.delete(id);
  }
}
