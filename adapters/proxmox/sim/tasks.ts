/**
 * The simulated node's worker tasks: UPIDs, logs ending in `TASK OK` / `TASK WARNINGS: N` /
 * `TASK ERROR: …`, status, the task list, and stopping. Each task is journaled when it starts
 * and when it ends; a task still running when the process died is run again on restart (its
 * steps are idempotent), as a real node's workers outlive a crashed client.
 */
import { join } from "node:path";
import type { Logger } from "../../../lib/log.ts";
import { formatUpid, type Upid } from "../upid.ts";
import { Journal } from "./journal.ts";

export interface TaskRecord extends Upid {
  upid: string;
  status: "running" | "stopped";
  exitstatus?: string;
  endtime?: number;
  log: string[];
  /** How to run the task again after a restart; JSON. */
  resume?: unknown;
}

export interface TaskContext {
  log(line: string): void;
  warn(line: string): void;
  readonly signal: AbortSignal;
}

/** The work of a task; throws to fail it (the message becomes the exit status). */
export type TaskWork = (context: TaskContext) => Promise<void>;

export interface SpawnRequest {
  type: string;
  id: string;
  user: string;
  work: TaskWork;
  resume?: unknown;
  /** Injected faults: the task fails with this message, or takes this long first. */
  failWith?: string;
  delayMs?: number;
  warnings?: number;
}

export interface TaskListFilter {
  vmid?: number;
  typefilter?: string;
  userfilter?: string;
  source?: "archive" | "active" | "all";
  errors?: boolean;
  since?: number;
  until?: number;
  start?: number;
  limit?: number;
  statusfilter?: string;
}

export interface TaskManagerOptions {
  node: string;
  dir: string;
  logger: Logger;
  now: () => number;
  /** Tasks kept (newest first); older finished ones are removed. */
  retain?: number;
}

export class TaskManager {
  readonly #options: TaskManagerOptions;
  readonly #tasks = new Map<string, TaskRecord>();
  readonly #running = new Map<string, { done: Promise<void>; abort: AbortController }>();
  readonly #pstart: number;
  readonly #journal: Journal<TaskRecord>;
  #nextPid: number;

  constructor(options: TaskManagerOptions) {
    this.#options = options;
    Deno.mkdirSync(options.dir, { recursive: true });
    this.#journal = new Journal(join(options.dir, "tasks.jsonl"));
    // Later entries of a task (its end) replace earlier ones (its start).
    for (const record of this.#journal.read()) this.#tasks.set(record.upid, record);
    const pids = [...this.#tasks.values()].map((t) => t.pid);
    this.#nextPid = Math.max(0x1000, ...pids) + 1;
    this.#pstart = Math.floor(options.now() / 10) % 0xffffffff;
    this.#prune();
  }

  /** Starts a task: its record is on disk before the UPID is handed out. */
  spawn(request: SpawnRequest): string {
    const starttime = Math.floor(this.#options.now() / 1000);
    const pid = this.#nextPid++;
    // A UPID's fields cannot hold ':', '/' or blanks; PVE URI-escapes such ids.
    const id = request.id.replace(/[:\s/]/g, (c) => encodeURIComponent(c));
    const fields = {
      node: this.#options.node,
      pid,
      pstart: this.#pstart,
      starttime,
      type: request.type,
      id,
      user: request.user,
    };
    const upid = formatUpid(fields);
    const record: TaskRecord = {
      upid,
      ...fields,
      status: "running",
      log: [],
      ...(request.resume === undefined ? {} : { resume: request.resume }),
    };
    this.#tasks.set(upid, record);
    this.#save(record);
    this.#run(record, request);
    this.#prune();
    return upid;
  }

  /** Runs again every task that was running when the previous process died. */
  resumeInterrupted(resumeWork: (record: TaskRecord) => TaskWork | undefined): void {
    for (const record of this.#tasks.values()) {
      if (record.status !== "running" || this.#running.has(record.upid)) continue;
      const work = resumeWork(record);
      if (work === undefined) this.#finish(record, "unexpected status");
      else this.#run(record, { type: record.type, id: record.id, user: record.user, work });
    }
  }

  get(upid: string): TaskRecord | undefined {
    return this.#tasks.get(upid);
  }

  /** Asks a running task to stop; it ends with `received interrupt`. */
  stop(upid: string): void {
    this.#running.get(upid)?.abort.abort();
  }

  list(filter: TaskListFilter): TaskRecord[] {
    const source = filter.source ?? "archive";
    const statuses = filter.statusfilter?.split(/[,;]/);
    const matches = [...this.#tasks.values()].filter((task) => {
      if (source === "archive" && task.status === "running") return false;
      if (source === "active" && task.status !== "running") return false;
      if (filter.vmid !== undefined && task.id !== String(filter.vmid)) return false;
      if (filter.typefilter !== undefined && task.type !== filter.typefilter) return false;
      if (filter.userfilter !== undefined && !task.user.includes(filter.userfilter)) return false;
      if (filter.since !== undefined && task.starttime < filter.since) return false;
      if (filter.until !== undefined && task.starttime > filter.until) return false;
      const kind = statusKind(task);
      if (filter.errors && kind !== "error") return false;
      if (statuses !== undefined && !statuses.includes(kind)) return false;
      return true;
    });
    matches.sort((a, b) => b.starttime - a.starttime || b.pid - a.pid);
    const start = filter.start ?? 0;
    return matches.slice(start, start + (filter.limit ?? 50));
  }

  /** Resolves when no task is running (for shutdown and tests). */
  async idle(): Promise<void> {
    while (this.#running.size > 0) {
      await Promise.allSettled([...this.#running.values()].map((r) => r.done));
    }
  }

  /** Aborts running tasks without finishing them, as a killed process would leave them. */
  abandon(): void {
    for (const running of this.#running.values()) running.abort.abort("abandoned");
  }

  #run(record: TaskRecord, request: SpawnRequest): void {
    const abort = new AbortController();
    let warnings = 0;
    const context: TaskContext = {
      log: (line) => void record.log.push(line),
      warn: (line) => {
        warnings++;
        record.log.push(`WARN: ${line}`);
      },
      signal: abort.signal,
    };
    const done = (async () => {
      // A worker runs after its UPID was answered, as a forked PVE worker does.
      await (request.delayMs
        ? new Promise((r) => setTimeout(r, request.delayMs))
        : new Promise((r) => setImmediate(r)));
      if (request.failWith !== undefined) throw new Error(request.failWith);
      for (let i = 1; i <= (request.warnings ?? 0); i++) context.warn(`simulated warning ${i}`);
      if (abort.signal.aborted) throw new Error("received interrupt");
      await request.work(context);
      if (abort.signal.aborted) throw new Error("received interrupt");
    })().then(
      () => warnings > 0 ? `WARNINGS: ${warnings}` : "OK",
      (error: unknown) => error instanceof Error ? error.message : String(error),
    ).then((exitstatus) => {
      this.#running.delete(record.upid);
      if (abort.signal.reason === "abandoned") return;
      this.#finish(record, exitstatus);
    });
    this.#running.set(record.upid, { done, abort });
  }

  #finish(record: TaskRecord, exitstatus: string): void {
    const flat = exitstatus.replace(/\s*\n\s*/g, " ").trim();
    record.log.push(
      flat === "OK" || /^WARNINGS: \d+$/.test(flat) ? `TASK ${flat}` : `TASK ERROR: ${flat}`,
    );
    record.status = "stopped";
    record.exitstatus = flat;
    record.endtime = Math.floor(this.#options.now() / 1000);
    delete record.resume;
    this.#save(record);
    if (flat !== "OK") {
      this.#options.logger.debug("simulated task did not end OK", {
        upid: record.upid,
        exitstatus: flat,
      });
    }
  }

  #save(record: TaskRecord): void {
    this.#journal.append(record);
  }

  #prune(): void {
    const retain = this.#options.retain ?? 5000;
    if (this.#tasks.size > retain) {
      for (const record of this.#tasks.values()) { // insertion order: oldest first
        if (this.#tasks.size <= retain) break;
        if (record.status !== "running") this.#tasks.delete(record.upid);
      }
    }
    // A task is a line when it starts and one when it ends; a restart reads every line.
    if (this.#journal.lines > 2 * retain) this.#journal.rewrite([...this.#tasks.values()]);
  }

  close(): void {
    this.#journal.close();
  }
}

function statusKind(task: TaskRecord): "ok" | "warning" | "error" | "unknown" {
  if (task.status === "running") return "unknown";
  if (task.exitstatus === "OK") return "ok";
  if (/^WARNINGS: \d+$/.test(task.exitstatus ?? "")) return "warning";
  return task.exitstatus === "unexpected status" ? "unknown" : "error";
}
