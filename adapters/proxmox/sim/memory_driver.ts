/**
 * A driver that only remembers: each CT's run state is journaled, so a restarted simulator
 * finds running CTs still running (as real CTs survive a crashed pve-cri).
 */
import { join } from "node:path";
import type { CtCreateSpec, CtDriver, CtRunSpec, CtRuntimeStatus, TaskLog } from "./driver.ts";
import { Journal, LazyEntries } from "./journal.ts";

interface MemoryCt {
  state: "running" | "stopped";
  pid?: number;
  startedAt?: number;
  spec?: CtRunSpec;
}

/** One journal line: a CT's new state, or its removal. */
type Entry = { vmid: number; ct: MemoryCt | null };

/** How each journal line starts (JSON.stringify keeps the key order it was written in). */
const VMID_FIELD = '{"vmid":';

export interface MemoryDriverOptions {
  dir: string;
  now?: () => number;
  /** CTs that ignore a clean shutdown request (their init does not exit on SIGPWR/SIGTERM). */
  ignoresShutdown?: (vmid: number) => boolean;
}

export class MemoryDriver implements CtDriver {
  readonly #options: MemoryDriverOptions;
  readonly #now: () => number;
  readonly #cts: LazyEntries<number, MemoryCt>;
  readonly #journal: Journal<Entry>;
  /** Set from the journal when the first CT starts. */
  #nextPid: number | undefined;

  constructor(options: MemoryDriverOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    Deno.mkdirSync(options.dir, { recursive: true });
    this.#journal = new Journal(join(options.dir, "memory.jsonl"));
    this.#cts = new LazyEntries({
      lines: this.#journal.readLines(),
      keyOf: (line) => {
        if (!line.startsWith(VMID_FIELD)) return undefined;
        const vmid = Number(line.slice(VMID_FIELD.length, line.indexOf(",", VMID_FIELD.length)));
        return Number.isInteger(vmid) ? vmid : undefined;
      },
      removes: (line) => line.endsWith(',"ct":null}'),
      // A removal line is never the last of its key here: `removes` dropped the key.
      parse: (line) => (JSON.parse(line) as Entry).ct as MemoryCt,
    });
  }

  create(spec: CtCreateSpec): Promise<void> {
    spec.log.log(`extracting archive '${spec.templatePath}'`);
    this.#save(spec.vmid, { state: "stopped" });
    return Promise.resolve();
  }

  start(spec: CtRunSpec, _log: TaskLog): Promise<void> {
    this.#save(spec.vmid, {
      state: "running",
      pid: this.#takePid(),
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
    if (this.#cts.delete(vmid)) this.#journal.append({ vmid, ct: null });
    return Promise.resolve();
  }

  status(vmid: number): Promise<CtRuntimeStatus> {
    const ct = this.#load(vmid);
    if (ct === undefined || ct.state === "stopped") return Promise.resolve({ state: "stopped" });
    return Promise.resolve({
      state: "running",
      ...(ct.pid === undefined ? {} : { pid: ct.pid }),
      ...(ct.startedAt === undefined ? {} : { startedAt: ct.startedAt }),
    });
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
    this.#journal.close();
    return Promise.resolve();
  }

  #takePid(): number {
    if (this.#nextPid === undefined) {
      this.#nextPid = 20000;
      // Only a running CT has a pid: those few lines are parsed.
      for (const vmid of this.#cts.keysWhereLineHas('"pid":')) {
        const pid = this.#cts.get(vmid)?.pid;
        if (pid !== undefined && pid >= this.#nextPid) this.#nextPid = pid + 1;
      }
    }
    return this.#nextPid++;
  }

  #load(vmid: number): MemoryCt | undefined {
    return this.#cts.get(vmid);
  }

  #save(vmid: number, ct: MemoryCt): void {
    this.#cts.set(vmid, ct);
    this.#journal.append({ vmid, ct });
    if (this.#journal.lines > 4 * this.#cts.size + 1000) {
      this.#journal.rewrite([...this.#cts.entries()].map(([id, c]) => ({ vmid: id, ct: c })));
    }
  }
}
