/**
 * CRI container resources in Proxmox's units: bytes → MiB (Proxmox's floor is 16 MiB),
 * CFS quota/period → `cpulimit` in cores, shares → `cpuunits`. Proxmox has no cpuset for CTs
 * through the API, so a cpuset is refused rather than silently dropped. PVE 9 runs cgroup v2
 * only, where `cpuunits` is `cpu.weight` (1–10000, 100 by default): shares are converted as
 * runc converts them for v2, so a pod weighs against the node's other CTs as it would under
 * runc.
 */
import { InvalidArgumentError } from "../lib/errors.ts";
import type { ResourceLimits } from "../machines/container_context.ts";
import type { CriResources } from "./api.ts";
import { sharesToWeight } from "../lib/cpu_weight.ts";

const MiB = 1024n * 1024n;
const minimumMemoryMiB = 16;

export function proxmoxLimits(r: CriResources, field = "linux"): ResourceLimits {
  if (r.cpusetCpus !== "" || r.cpusetMems !== "") {
    const which = r.cpusetCpus !== "" ? "cpuset_cpus" : "cpuset_mems";
    throw new InvalidArgumentError(
      `${field}.${which}: pve-cri cannot pin CPUs or memory nodes (Proxmox CTs have no cpuset)`,
      { details: { field: `${field}.${which}` } },
    );
  }
  const limits: ResourceLimits = {};
  const memory = int64(r.memoryLimitInBytes, `${field}.memory_limit_in_bytes`);
  if (memory > 0n) {
    limits.memoryMiB = Math.max(minimumMemoryMiB, Number((memory + MiB - 1n) / MiB));
  }
  const swapTotal = int64(r.memorySwapLimitInBytes, `${field}.memory_swap_limit_in_bytes`);
  if (swapTotal > 0n && memory > 0n) {
    // cgroup v1 semantics: the limit covers memory plus swap.
    limits.swapMiB = Number((swapTotal > memory ? swapTotal - memory : 0n) / MiB);
  }
  // -1 is "no quota" in CFS terms.
  const quota = r.cpuQuota === "-1" ? 0n : int64(r.cpuQuota, `${field}.cpu_quota`);
  const period = int64(r.cpuPeriod, `${field}.cpu_period`);
  if (quota > 0n && period > 0n) {
    limits.cpulimit = Math.min(8192, Math.round((Number(quota) / Number(period)) * 100) / 100);
  }
  const shares = int64(r.cpuShares, `${field}.cpu_shares`);
  if (shares > 0n) limits.cpuunits = sharesToWeight(shares);
  return limits;
}

function int64(value: string, field: string): bigint {
  if (value === "" || value === undefined) return 0n;
  if (!/^-?\d+$/.test(value)) {
    throw new InvalidArgumentError(`${field}: "${value}" is not an integer`, {
      details: { field },
    });
  }
  const n = BigInt(value);
  if (n < 0n) {
    throw new InvalidArgumentError(`${field}: ${value} is negative`, { details: { field } });
  }
  return n;
}
