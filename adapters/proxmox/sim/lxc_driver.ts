/**
 * CTs as real LXC containers, named by VMID, in an lxcpath of the simulator's own. A CT's root
 * is an overlay: the OCI template unpacked once (base_volumes.ts) below, `<lxcpath>/<vmid>/rootfs`
 * (what the CT writes) above, mounted by LXC at start; start writes the LXC config from
 * the CT's (as PVE regenerates it before every start) and runs `lxc-start -F` detached from
 * the simulator, so CTs outlive it as they outlive pveproxy; stop is `lxc-stop`.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { dirname, join } from "node:path";
import { weightToShares } from "../../../lib/cpu_weight.ts";
import { type LxcConfigLine, lxcConfigText } from "../../lxc/lxc_config.ts";
import { LxcTools } from "../../lxc/lxc_tools.ts";
import { isAlive, processStartTime } from "../../lxc/proc.ts";
import { BaseVolumes } from "./base_volumes.ts";
import type { CtCreateSpec, CtDriver, CtRunSpec, CtRuntimeStatus, TaskLog } from "./driver.ts";
import { removeTree } from "../../../lib/files.ts";
import { pathExists, readTextIfExists, writeFileAtomic } from "./files.ts";

export interface LxcDriverOptions {
  /** The driver's own lxcpath (absolute: LXC's tools break on a relative one). */
  lxcpath: string;
  /** Seconds to wait for a CT to reach RUNNING. */
  startTimeoutSeconds?: number;
  /** Where templates are unpacked once (default: `lxc-base-volumes` beside the lxcpath). */
  baseVolumes?: string;
}

const mib = 1024 * 1024;

export class LxcDriver implements CtDriver {
  readonly lxc: LxcTools;
  readonly #startTimeout: number;
  readonly #bases: BaseVolumes;

  constructor(options: LxcDriverOptions) {
    if (!options.lxcpath.startsWith("/")) throw new TypeError("lxcpath must be absolute");
    // An overlay rootfs path is `overlay:LOWER:UPPER`.
    if (options.lxcpath.includes(":")) throw new TypeError("lxcpath must not contain ':'");
    Deno.mkdirSync(options.lxcpath, { recursive: true, mode: 0o700 });
    this.lxc = new LxcTools(options.lxcpath);
    this.#startTimeout = options.startTimeoutSeconds ?? 30;
    this.#bases = new BaseVolumes(
      options.baseVolumes ?? join(dirname(options.lxcpath), "lxc-base-volumes"),
    );
  }

  get lxcpath(): string {
    return this.lxc.lxcpath;
  }

  /** What the CT wrote: the upper layer of its root. */
  rootfsOf(vmid: number): string {
    return join(this.lxcpath, String(vmid), "rootfs");
  }

  async create(spec: CtCreateSpec): Promise<void> {
    const dir = join(this.lxcpath, String(spec.vmid));
    if (pathExists(dir)) {
      // A create run again after a crash starts from an empty volume.
      await this.#kill(String(spec.vmid));
      await removeTree(dir);
    }
    // Its directories are made when it first starts: a create records the clone, no more.
    await this.#bases.clone(spec.vmid, spec.templatePath, spec.log);
  }

  /** The CT's directory and the upper layer of its root, made on its first start. */
  #makeDirs(vmid: number): void {
    const upper = this.rootfsOf(vmid);
    if (pathExists(upper)) return;
    Deno.mkdirSync(join(this.lxcpath, String(vmid)), { recursive: true, mode: 0o700 });
    const base = this.#bases.baseOf(vmid);
    // The merged root takes its owner and mode from the upper layer's top directory.
    const top = base === undefined ? undefined : Deno.statSync(base);
    const mode = (top?.mode ?? 0o755) & 0o7777;
    Deno.mkdirSync(upper, { mode });
    Deno.chmodSync(upper, mode); // past the umask
    if (top !== undefined && (top.uid !== 0 || top.gid !== 0)) {
      Deno.chownSync(upper, top.uid, top.gid);
    }
  }

  /**
   * Is the CT's `lxc-start -F` (which lives exactly as long as the CT) still there? false
   * answers "stopped" without running an LXC tool; undefined (no record) means ask LXC.
   */
  #monitorAlive(vmid: string): boolean | undefined {
    const dir = join(this.lxcpath, vmid);
    const record = readTextIfExists(join(dir, "monitor"));
    if (record === undefined) return pathExists(join(dir, "config")) ? undefined : false;
    const [pid, startedAt] = record.split(" ").map(Number) as [number, number];
    return isAlive(pid) && processStartTime(pid) === startedAt;
  }

  async #kill(name: string): Promise<void> {
    if (this.#monitorAlive(name) !== false) await this.lxc.kill(name);
  }

  async start(spec: CtRunSpec, log: TaskLog): Promise<void> {
    const name = String(spec.vmid);
    const dir = join(this.lxcpath, name);
    this.#makeDirs(spec.vmid);
    Deno.writeTextFileSync(join(dir, "config"), lxcConfigText(this.#configOf(spec)));
    const consoleFd = openSync(join(dir, "console.log"), "a", 0o600);
    let exited: Promise<number | null>;
    try {
      // Detached (its own session), as systemd runs `lxc-start -F` for pve-container@VMID.
      const child = spawn("lxc-start", [
        "-F",
        "-P",
        this.lxcpath,
        "-n",
        name,
        "-l",
        "ERROR",
        "-o",
        join(dir, "lxc.log"),
      ], {
        detached: true,
        stdio: ["ignore", consoleFd, consoleFd],
      });
      exited = new Promise((resolve) => {
        child.on("exit", (code) => resolve(code));
        child.on("error", () => resolve(-1));
      });
      child.unref();
      if (child.pid !== undefined) {
        writeFileAtomic(join(dir, "monitor"), `${child.pid} ${processStartTime(child.pid)}`);
      }
    } finally {
      closeSync(consoleFd);
    }
    const gaveUp = new AbortController();
    const first = await Promise.race([
      this.lxc.waitRunning(name, this.#startTimeout, gaveUp.signal).then((running) => ({
        running,
      })),
      exited.then((code) => ({ exited: code })),
    ]);
    gaveUp.abort();
    if ("running" in first && first.running) {
      log.log(`CT ${name} started`);
      return;
    }
    const tail = readTail(join(dir, "lxc.log"));
    throw new Error(`startup for container '${name}' failed${tail === "" ? "" : `: ${tail}`}`);
  }

  async stop(vmid: number, _log: TaskLog): Promise<void> {
    await this.#kill(String(vmid));
  }

  async shutdown(vmid: number, timeoutSeconds: number, _log: TaskLog): Promise<boolean> {
    const name = String(vmid);
    await this.lxc.run("lxc-stop", name, ["-t", String(timeoutSeconds), "--nokill"], {
      allowFail: true,
      timeoutMs: (timeoutSeconds + 10) * 1000,
    });
    return (await this.lxc.info(name)).state === "STOPPED";
  }

  async destroy(vmid: number, log: TaskLog): Promise<void> {
    const name = String(vmid);
    await this.#kill(name);
    await removeTree(join(this.lxcpath, name));
    log.log(`removed ${this.rootfsOf(vmid)}`);
    this.#bases.release(vmid);
  }

  async status(vmid: number): Promise<CtRuntimeStatus> {
    if (this.#monitorAlive(String(vmid)) === false) return { state: "stopped" };
    const info = await this.lxc.info(String(vmid));
    if (info.state !== "RUNNING" || info.pid === undefined) return { state: "stopped" };
    const startedAt = processStartTime(info.pid);
    return { state: "running", pid: info.pid, ...(startedAt === undefined ? {} : { startedAt }) };
  }

  /** Its unpacked base goes once no CT is cloned from it. */
  templateRemoved(): void {
    this.#bases.prune();
  }

  close(): Promise<void> {
    this.#bases.close();
    return Promise.resolve();
  }

  #rootfsPath(vmid: number): string {
    const base = this.#bases.baseOf(vmid);
    const upper = this.rootfsOf(vmid);
    return base === undefined ? `dir:${upper}` : `overlay:${base}:${upper}`;
  }

  /** The LXC config PVE would generate from the CT's: limits, identity, init, raw lines last. */
  #configOf(spec: CtRunSpec): LxcConfigLine[] {
    const v1 = cgroupV1();
    const prefix = v1 ? "lxc.cgroup" : "lxc.cgroup2";
    const lines: LxcConfigLine[] = [
      ["lxc.arch", "amd64"],
      ["lxc.uts.name", spec.hostname],
      ["lxc.rootfs.path", this.#rootfsPath(spec.vmid)],
      ["lxc.mount.auto", "proc:mixed sys:mixed cgroup:mixed"],
      ["lxc.autodev", "1"],
      ["lxc.tty.max", "0"],
      ["lxc.signal.halt", "SIGPWR"],
      ["lxc.init.cmd", spec.entrypoint],
    ];
    for (const entry of spec.env) lines.push(["lxc.environment", entry]);
    const memory = spec.memoryMiB * mib;
    if (v1) {
      lines.push([`${prefix}.memory.limit_in_bytes`, String(memory)]);
      if (pathExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")) {
        lines.push([`${prefix}.memory.memsw.limit_in_bytes`, String(memory + spec.swapMiB * mib)]);
      }
    } else {
      lines.push([`${prefix}.memory.max`, String(memory)]);
      lines.push([`${prefix}.memory.swap.max`, String(spec.swapMiB * mib)]);
    }
    if (spec.cores !== undefined) {
      const cpus = Math.min(spec.cores, navigator.hardwareConcurrency);
      lines.push([`${prefix}.cpuset.cpus`, cpus <= 1 ? "0" : `0-${cpus - 1}`]);
    }
    if (spec.cpulimit !== undefined && spec.cpulimit > 0) {
      const quota = Math.round(spec.cpulimit * 100_000);
      if (v1) {
        lines.push([`${prefix}.cpu.cfs_period_us`, "100000"]);
        lines.push([`${prefix}.cpu.cfs_quota_us`, String(quota)]);
      } else lines.push([`${prefix}.cpu.max`, `${quota} 100000`]);
    }
    if (spec.cpuunits !== undefined) {
      // PVE 9 is cgroup v2, where cpuunits is cpu.weight; a v1 host gets the same share.
      lines.push(
        v1 ? [`${prefix}.cpu.shares`, String(weightToShares(spec.cpuunits))] : [
          `${prefix}.cpu.weight`,
          String(Math.max(1, Math.min(10000, spec.cpuunits))),
        ],
      );
    }
    lines.push(...netLines(spec.net));
    // Raw lines come last, as PVE appends them: they may override what it generated.
    lines.push(...spec.lxc);
    return lines;
  }
}

/** `net[n]` options as LXC veth NICs on their bridge; none means no NIC at all. */
function netLines(nets: Record<string, Record<string, string>>): LxcConfigLine[] {
  const entries = Object.entries(nets).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return [["lxc.net.0.type", "empty"]];
  const lines: LxcConfigLine[] = [];
  entries.forEach(([key, net], i) => {
    const n = `lxc.net.${i}`;
    lines.push([`${n}.type`, "veth"]);
    if (net.bridge !== undefined) lines.push([`${n}.link`, net.bridge]);
    lines.push([`${n}.name`, net.name ?? `eth${key.slice(3)}`]);
    if (net.hwaddr !== undefined) lines.push([`${n}.hwaddr`, net.hwaddr]);
    lines.push([`${n}.flags`, "up"]);
  });
  return lines;
}

function cgroupV1(): boolean {
  return pathExists("/sys/fs/cgroup/memory/memory.limit_in_bytes");
}

function readTail(path: string): string {
  try {
    const text = Deno.readTextFileSync(path);
    return text.trim().split("\n").slice(-3).join("; ").slice(0, 1000);
  } catch {
    return "";
  }
}
