/** A CT's cgroup on the host (v1 or v2), found from its init process: usage and OOM kills. */

export interface CtCgroup {
  /** Directory holding memory files. */
  memory?: string;
  /** Directory holding CPU accounting files. */
  cpu?: string;
  v2: boolean;
}

export function cgroupOf(pid: number): CtCgroup | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
  } catch {
    return undefined;
  }
  const v1: Record<string, string> = {};
  let unified: string | undefined;
  for (const line of text.trim().split("\n")) {
    const [, controllers, path] = line.split(":") as [string, string, string];
    if (controllers === "") unified = path;
    for (const c of controllers.split(",")) v1[c] = path;
  }
  if (v1.memory !== undefined) {
    return {
      memory: `/sys/fs/cgroup/memory${v1.memory}`,
      ...(v1.cpuacct === undefined ? {} : { cpu: `/sys/fs/cgroup/cpuacct${v1.cpuacct}` }),
      v2: false,
    };
  }
  if (unified === undefined) return undefined;
  const dir = `/sys/fs/cgroup${unified}`;
  return { memory: dir, cpu: dir, v2: true };
}

/** The file whose `oom_kill N` line counts the cgroup's OOM kills. */
export function oomEventsFile(cgroup: CtCgroup): string | undefined {
  if (cgroup.memory === undefined) return undefined;
  return `${cgroup.memory}/${cgroup.v2 ? "memory.events" : "memory.oom_control"}`;
}

function read(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return undefined;
  }
}

function statValue(text: string | undefined, key: string): number | undefined {
  const match = new RegExp(`^${key} (\\d+)$`, "m").exec(text ?? "");
  return match === null ? undefined : Number(match[1]);
}

/** CPU time in ns, memory working set (usage minus inactive file cache, as cAdvisor) and limit. */
export function cgroupUsage(cgroup: CtCgroup): {
  cpuUsageNs: bigint;
  memoryWorkingSetBytes: number;
  memoryLimitBytes: number | undefined;
} {
  let cpuUsageNs = 0n;
  let usage = 0;
  let inactive = 0;
  let limit: number | undefined;
  if (cgroup.v2) {
    const usec = statValue(read(`${cgroup.cpu}/cpu.stat`), "usage_usec") ?? 0;
    cpuUsageNs = BigInt(usec) * 1000n;
    usage = Number(read(`${cgroup.memory}/memory.current`) ?? 0);
    inactive = statValue(read(`${cgroup.memory}/memory.stat`), "inactive_file") ?? 0;
    const max = read(`${cgroup.memory}/memory.max`);
    if (max !== undefined && max !== "max") limit = Number(max);
  } else {
    const ns = read(`${cgroup.cpu}/cpuacct.usage`);
    if (ns !== undefined && /^\d+$/.test(ns)) cpuUsageNs = BigInt(ns);
    usage = Number(read(`${cgroup.memory}/memory.usage_in_bytes`) ?? 0);
    inactive = statValue(read(`${cgroup.memory}/memory.stat`), "total_inactive_file") ?? 0;
    const max = Number(read(`${cgroup.memory}/memory.limit_in_bytes`));
    if (Number.isFinite(max) && max < 2 ** 62) limit = max;
  }
  return {
    cpuUsageNs,
    memoryWorkingSetBytes: Math.max(0, usage - inactive),
    memoryLimitBytes: limit,
  };
}
