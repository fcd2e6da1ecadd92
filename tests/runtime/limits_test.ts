import assert from "node:assert/strict";
import { proxmoxLimits } from "../../runtime/limits.ts";
import { CpuIntegrator } from "../../runtime/cpu_integrator.ts";

const none = {
  cpuPeriod: "0",
  cpuQuota: "0",
  cpuShares: "0",
  memoryLimitInBytes: "0",
  memorySwapLimitInBytes: "0",
  cpusetCpus: "",
  cpusetMems: "",
};

Deno.test("CRI limits become Proxmox's: MiB with a 16 MiB floor, cores, cpuunits", () => {
  assert.deepEqual(proxmoxLimits(none), {});
  assert.deepEqual(
    proxmoxLimits({ ...none, memoryLimitInBytes: String(256 * 1024 * 1024 + 1) }),
    { memoryMiB: 257 },
  );
  assert.deepEqual(proxmoxLimits({ ...none, memoryLimitInBytes: "1048576" }), { memoryMiB: 16 });
  assert.deepEqual(
    proxmoxLimits({ ...none, cpuQuota: "50000", cpuPeriod: "100000", cpuShares: "512" }),
    { cpulimit: 0.5, cpuunits: 20 },
  );
  // shares → cgroup v2 weight, as runc converts them: the kubelet's 1 CPU (1024) is 39.
  assert.deepEqual(proxmoxLimits({ ...none, cpuShares: "1024" }), { cpuunits: 39 });
  assert.deepEqual(proxmoxLimits({ ...none, cpuShares: "2" }), { cpuunits: 1 });
  assert.deepEqual(proxmoxLimits({ ...none, cpuShares: "262144" }), { cpuunits: 10000 });
  assert.deepEqual(proxmoxLimits({ ...none, cpuQuota: "-1", cpuPeriod: "100000" }), {});
  assert.deepEqual(
    proxmoxLimits({
      ...none,
      memoryLimitInBytes: String(512 * 1024 * 1024),
      memorySwapLimitInBytes: String(768 * 1024 * 1024),
    }),
    { memoryMiB: 512, swapMiB: 256 },
  );
  // Beyond 2^53 bytes: parsed as BigInt, no precision lost on the way to MiB.
  assert.deepEqual(proxmoxLimits({ ...none, memoryLimitInBytes: "9007199254740993" }), {
    memoryMiB: 8589934593, // 2^33 MiB and one byte, rounded up
  });
});

Deno.test("a cpuset is refused with InvalidArgument naming the field", () => {
  assert.throws(() => proxmoxLimits({ ...none, cpusetCpus: "0-1" }), (error: unknown) => {
    assert.equal((error as { code: string }).code, "InvalidArgument");
    assert.match((error as Error).message, /^linux\.cpuset_cpus: /);
    return true;
  });
  assert.throws(
    () => proxmoxLimits({ ...none, memoryLimitInBytes: "lots" }),
    /memory_limit_in_bytes/,
  );
});

Deno.test("CPU use integrates PVE's fraction into a nanosecond counter", () => {
  const cpu = new CpuIntegrator();
  assert.equal(cpu.sample("c", 1000, 0.5), 0n, "the first sample starts the counter");
  assert.equal(cpu.sample("c", 3000, 0.5), 1_000_000_000n, "half a core for 2 s is 1 s");
  assert.equal(cpu.sample("c", 4000, 2), 3_000_000_000n);
  assert.equal(cpu.total("c"), 3_000_000_000n);
});
