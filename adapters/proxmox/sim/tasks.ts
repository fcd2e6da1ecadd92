/**
 * The simulated node's worker tasks: UPIDs, logs ending in `TASK OK` / `TASK WARNINGS: N` /
 * `TASK ERROR: …`, status, the task list, and stopping. Each task is journaled when it starts
 * and when it ends; a task still running when the process died is run again on restart (its
 * steps are idempotent), as a real node's workers outlive a crashed client.
 */
import { join } from "node:path";
import type { Logger } from "../../../lib/log.ts";
import { formatUpid, type Upid } from "../upid.ts";
import { readTextIfExists, writeFileAtomic } from "./files.ts";
import { Journal, LazyEntries } from "./journal.ts";

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
  /**
   * Journal lines (a task writes one when it starts and one when it ends) after which the
   * journal starts over: its finished tasks become the previous generation, kept in a file
   * of their own and read only when asked for. A restart reads the current generation alone.
   */
  generationLines?: number;
}

export class TaskManager {
  readonly #options: TaskManagerOptions;
  /**
   * The current generation by UPID, oldest first. A task read back from the journal stays
   * the line it was written as until something asks for it.
   */
  #tasks: LazyEntries<string, TaskRecord>;
  /** The previous generation's finished tasks; read from its file on first use. */
  #previous: LazyEntries<string, TaskRecord> | undefined;
  readonly #running = new Map<string, { done: Promise<void>; abort: AbortController }>();
  readonly #pstart: number;
  readonly #journal: Journal<TaskRecord>;
  #nextPid: number;

  constructor(options: TaskManagerOptions) {
    this.#options = options;
    Deno.mkdirSync(options.dir, { recursive: true });
    this.#journal = new Journal(join(options.dir, "tasks.jsonl"));
    // Later entries of a task (its end) replace earlier ones (its start).
    this.#tasks = taskEntries(this.#journal.readLines());
    // Pids go on from the current generation's; one of an older task may come again, as a
    // node's pids do: a UPID stays unique by its pstart, new for each start.
    this.#nextPid = Math.max(0x1000, ...this.#tasks.keys().map(pidOfUpid)) + 1;
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
    for (const record of this.#runningRecords()) {
      if (this.#running.has(record.upid)) continue;
      const work = resumeWork(record);
      if (work === undefined) this.#finish(record, "unexpected status");
      else this.#run(record, { type: record.type, id: record.id, user: record.user, work });
    }
  }

  get(upid: string): TaskRecord | undefined {
    return (this.#tasks.has(upid) ? this.#tasks : this.#previousTasks()).get(upid);
  }

  /** Asks a running task to stop; it ends with `received interrupt`. */
  stop(upid: string): void {
    this.#running.get(upid)?.abort.abort();
  }

  list(filter: TaskListFilter): TaskRecord[] {
    const source = filter.source ?? "archive";
    const statuses = filter.statusfilter?.split(/[,;]/);
    const upids = [...this.#previousTasks().keys(), ...this.#tasks.keys()];
    const matches = upids.flatMap((upid) => this.get(upid) ?? []).filter(
      (task) => {
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
      },
    );
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

  /**
   * Starts the journal over once it has `generationLines` lines: finished tasks move to the
   * previous generation's file (replacing the one before), running ones stay.
   */
  #prune(): void {
    if (this.#journal.lines < (this.#options.generationLines ?? 5000)) return;
    // Running records stay the objects their work updates.
    const running = taskEntries([]);
    for (const record of this.#runningRecords()) running.set(record.upid, record);
    const finished = this.#tasks.keys().filter((upid) => !running.has(upid))
      .map((upid) => this.#tasks.lineOf(upid)!);
    writeFileAtomic(this.#previousPath, finished.map((line) => line + "\n").join(""));
    this.#journal.rewriteLines(running.keys().map((upid) => running.lineOf(upid)!));
    this.#previous = taskEntries(finished);
    this.#tasks = running;
  }

  get #previousPath(): string {
    return join(this.#options.dir, "tasks.1.jsonl");
  }

  #previousTasks(): LazyEntries<string, TaskRecord> {
    return this.#previous ??= taskEntries(
      (readTextIfExists(this.#previousPath) ?? "").split("\n").filter((line) => line !== ""),
    );
  }

  /** The current generation's running tasks; a line that cannot be one is never parsed. */
  #runningRecords(): TaskRecord[] {
    return this.#tasks.keysWhereLineHas(RUNNING)
      .flatMap((upid) => this.#tasks.get(upid) ?? [])
      .filter((record) => record.status === "running");
  }

  close(): void {
    this.#journal.close();
  }
}

/** How a running task's record reads in the journal (JSON.stringify writes no blanks). */
const RUNNING = '"status":"running"';

/** Journal lines by the task they are about; a later line of a task replaces an earlier. */
function taskEntries(lines: readonly string[]): LazyEntries<string, TaskRecord> {
  return new LazyEntries({
    lines,
    keyOf: upidOfLine,
    removes: () => false, // finished tasks leave with their generation
    parse: (line) => JSON.parse(line) as TaskRecord,
  });
}

const UPID_FIELD = '{"upid":"';

/** The UPID a journal line is about: records are written with it as their first field. */
function upidOfLine(line: string): string | undefined {
  if (line.startsWith(UPID_FIELD)) {
    const end = line.indexOf('"', UPID_FIELD.length);
    if (end > 0) return line.slice(UPID_FIELD.length, end);
  }
  try {
    return (JSON.parse(line) as Partial<TaskRecord>).upid;
  } catch {
    return undefined;
  }
}

/** `UPID:node:PID:…`: the pid, in hex, is the third field. */
function pidOfUpid(upid: string): number {
  return Number.parseInt(upid.split(":", 3)[2] ?? "", 16) || 0;
}

function statusKind(task: TaskRecord): "ok" | "warning" | "error" | "unknown" {
  if (task.status === "running") return "unknown";
  if (task.exitstatus === "OK") return "ok";
  if (/^WARNINGS: \d+$/.test(task.exitstatus ?? "")) return "warning";
  return task.exitstatus === "unexpected status" ? "unknown" : "error";
}
