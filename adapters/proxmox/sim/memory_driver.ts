/**
 * A driver that only remembers: each CT's run state is a small JSON file, so a restarted
 * simulator finds running CTs still running (as real CTs survive a crashed pve-cri).
 */
import { join } from "node:path";
import type { CtCreateSpec, CtDriver, CtRunSpec, CtRuntimeStatus, TaskLog } from "./driver.ts";
import { readJsonIfExists, removeIfExists, writeFileAtomic } from "./files.ts";

interface MemoryCt {
  state: "running" | "stopped";
  pid?: number;
  startedAt?: number;
  spec?: CtRunSpec;
}

export interface MemoryDriverOptions {
  dir: string;
  now?: () => number;
  /** CTs that ignore a clean shutdown request (their init does not exit on SIGPWR/SIGTERM). */
  ignoresShutdown?: (vmid: number) => boolean;
}

export class MemoryDriver implements CtDriver {
  readonly #options: MemoryDriverOptions;
  readonly #now: () => number;
  readonly #cts = new Map<number, MemoryCt>();
  #nextPid = 20000;

  constructor(options: MemoryDriverOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    Deno.mkdirSync(options.dir, { recursive: true });
  }

  create(spec: CtCreateSpec): Promise<void> {
    spec.log.log(`extracting archive '${spec.templatePath}'`);
    this.#save(spec.vmid, { state: "stopped" });
    return Promise.resolve();
  }

  start(spec: CtRunSpec, _log: TaskLog): Promise<void> {
    this.#save(spec.vmid, {
      state: "running",
      pid: this.#nextPid++,
      startedAt: this.#now(),
      spec,
    });
    return Promise.resolve();
  }

  stop(vmid: number, _log: TaskLog): Promise<void> {
    this.#save(vmid, { state: "stopped" });
    return Promise.resolve();
  }

  shutdown(vmid: number, _timeoutSeconds: number, _log: TaskLog): Promise<boolean> {
    if (this.#options.ignoresShutdown?.(vmid)) return Promise.resolve(false);
    this.#save(vmid, { state: "stopped" });
    return Promise.resolve(true);
  }

  destroy(vmid: number, _log: TaskLog): Promise<void> {
    this.#cts.delete(vmid);
    removeIfExists(this.#file(vmid));
    return Promise.resolve();
  }

  status(vmid: number): CtRuntimeStatus {
    const ct = this.#load(vmid);
    if (ct === undefined || ct.state === "stopped") return { state: "stopped" };
    return {
      state: "running",
      ...(ct.pid === undefined ? {} : { pid: ct.pid }),
      ...(ct.startedAt === undefined ? {} : { startedAt: ct.startedAt }),
    };
  }

  /** The spec a running CT was started with (what an LXC driver would have run). */
  runSpec(vmid: number): CtRunSpec | undefined {
    return this.#load(vmid)?.spec;
  }

  /** Simulates the CT's init exiting: the CT stops by itself. */
  exit(vmid: number): void {
    if (this.#load(vmid)?.state === "running") this.#save(vmid, { state: "stopped" });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #load(vmid: number): MemoryCt | undefined {
    let ct = this.#cts.get(vmid);
    if (ct === undefined) {
      ct = readJsonIfExists<MemoryCt>(this.#file(vmid));
      if (ct !== undefined) {
        this.#cts.set(vmid, ct);
        if (ct.pid !== undefined && ct.pid >= this.#nextPid) this.#nextPid = ct.pid + 1;
      }
    }
    return ct;
  }

  #save(vmid: number, ct: MemoryCt): void {
    this.#cts.set(vmid, ct);
    writeFileAtomic(this.#file(vmid), JSON.stringify(ct));
  }

  #file(vmid: number): string {
    return join(this.#options.dir, `${vmid}.json`);
  }
}
