/**
 * What makes a simulated CT exist: the simulator keeps Proxmox's bookkeeping (configs, locks,
 * tasks) and asks a driver to do the real thing. The memory driver only remembers; an LXC
 * driver (later) unpacks the template and runs `lxc-start` with the entrypoint and env.
 */

/** Where task output goes; a driver's lines appear in the task log. */
export interface TaskLog {
  log(line: string): void;
  warn(line: string): void;
  readonly signal: AbortSignal;
}

/** What a driver needs from a CT's config to run it. */
export interface CtRunSpec {
  vmid: number;
  hostname: string;
  /** Init command line (`entrypoint`), `/sbin/init` when unset. */
  entrypoint: string;
  /** `KEY=value` entries (`env`). */
  env: string[];
  cmode: "tty" | "console" | "shell";
  memoryMiB: number;
  swapMiB: number;
  cores?: number;
  /** CPU time limit in CPUs (`cpulimit`, 0 = none) and relative weight (`cpuunits`). */
  cpulimit?: number;
  cpuunits?: number;
  /** `net[n]` → its parsed options (`bridge`, `name`, `hwaddr`, …). */
  net: Record<string, Record<string, string>>;
  unprivileged: boolean;
  /** Raw `lxc.*` lines of the config, whitelisted. */
  lxc: [string, string][];
}

export interface CtCreateSpec {
  vmid: number;
  /** Path of the template file (a `vztmpl` volume) to unpack. */
  templatePath: string;
  /** The root disk's volid (`local-lvm:vm-100-disk-0`). */
  rootfs: string;
  /** Unpack with shifted ids (CT root = an unprivileged host uid). */
  unprivileged: boolean;
  ostype?: string;
  log: TaskLog;
}

export interface CtRuntimeStatus {
  state: "running" | "stopped";
  /** The init process id while running. */
  pid?: number;
  /** When it started, ms since the epoch. */
  startedAt?: number;
}

export interface CtDriver {
  create(spec: CtCreateSpec): Promise<void>;
  start(spec: CtRunSpec, log: TaskLog): Promise<void>;
  /** Hard stop (SIGKILL to everything). */
  stop(vmid: number, log: TaskLog): Promise<void>;
  /** Clean shutdown; false if the CT was still running after the timeout. */
  shutdown(vmid: number, timeoutSeconds: number, log: TaskLog): Promise<boolean>;
  destroy(vmid: number, log: TaskLog): Promise<void>;
  /** Asynchronous: a real driver asks LXC (`lxc-info`). */
  status(vmid: number): Promise<CtRuntimeStatus>;
  /** A template was deleted from its storage: what the driver keeps of it may go. */
  templateRemoved?(): void;
  close(): Promise<void>;
}
