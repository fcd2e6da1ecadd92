import type { DatabaseSync } from "node:sqlite";
import { AbortedError, InternalError } from "../lib/errors.ts";
import { type Logger, silentLogger } from "../lib/log.ts";
import {
  busyTimeoutPragma,
  defaultBusyTimeoutMs,
  isBusy,
  openDatabase,
  translateSqliteError,
} from "./database.ts";
import { decodeEvent, type EventRow, type StreamName } from "./decode_event.ts";
import {
  CorruptEventError,
  ExpectedVersionConflictError,
  ProjectionKeyConflictError,
  StoreUnavailableError,
  StreamClosedError,
} from "./errors.ts";
import { assertSchemaKnown, migrate } from "./migrations/mod.ts";
import { PendingBatch, type PendingEvent, type StreamState } from "./pending_batch.ts";
import { type QuarantinedStream, quarantinedStreams, quarantineStream } from "./quarantine.ts";
import { rebuildProjections } from "./rebuild_projections.ts";
import { prepareStatements, type Statements } from "./statements.ts";
import type {
  AppendOptions,
  AppendResult,
  EventInput,
  EventListener,
  ExpectedVersion,
  ProjectionRow,
  ProjectionSummary,
  ProjectionUpdate,
  Projector,
  RecordedEvent,
  StreamAppend,
  StreamInfo,
  Unsubscribe,
  Upcaster,
} from "./types.ts";

export interface EventStoreOptions {
  path: string;
  /** Replay's mode: no migration, no writes, works beside a writing server (WAL). */
  readOnly?: boolean;
  busyTimeoutMs?: number;
  upcast?: Upcaster;
  projectors?: readonly Projector[];
  clock?: () => number;
  log?: Logger;
  /**
   * WAL pages between checkpoints (SQLite's default: 1,000). Each checkpoint copies pages and
   * fsyncs, stalling the commit that runs it (~8 ms here at 1,000 pages, ~25 ms at 4,000):
   * fewer, longer stalls or more, shorter ones, for the same total work.
   */
  checkpointPages?: number;
  /**
   * Checkpoint on a worker thread (see checkpoint_worker.ts) and keep the writer's own
   * checkpoints only as a backstop. For long-running writers (the runtime); a short-lived
   * store (tests, tools) does not need the thread. `true` takes the default policy.
   */
  backgroundCheckpoint?: boolean | Partial<CheckpointPolicy>;
}

export interface CheckpointPolicy {
  /** How often the worker copies WAL pages into the database. */
  intervalMs: number;
  /** The WAL size (pages) at which the worker forces the WAL to start over. */
  restartPages: number;
}

/**
 * Copying less often copies a page rewritten many times (a projection's, a stream's) fewer
 * times: in alternating runs of the CRI lifecycle benchmark, 500 ms gave lower create p50
 * and p99 than 100 ms. Each RESTART holds the writer's lock 2–6 ms here (its copy and sync):
 * at 4,096 pages the benchmark's ~6,000 pages/s forced nine in 600 lifecycles, at 16,384
 * three. The WAL then peaks near 85 MB under that load.
 */
const defaultCheckpointPolicy: CheckpointPolicy = { intervalMs: 500, restartPages: 16384 };

/** With a background checkpointer, the writer checkpoints itself only this far past it. */
const backstopCheckpointFactor = 2;

/**
 * When the WAL starts over, a file past this is cut back to it. Below it the file keeps its
 * size: writing into blocks it already has needs no allocation, which on ext4 can wait on
 * the journal for milliseconds (cutting back to 4 MiB on every restart did, here).
 */
const walKeepBytes = 128 * 1024 * 1024;

/** How many recently committed projection rows the writer keeps in memory. */
const recentRowsLimit = 512;

const unchanged: Upcaster = ({ typeVersion, data }) => ({ typeVersion, data });

/**
 * The event log on SQLite. Appends are validated at once (versions, closed streams, unique
 * projection keys) and committed together at the end of the tick; each caller's promise
 * resolves only after its events are committed. Reads are synchronous, like node:sqlite.
 */
export class EventStore {
  readonly path: string;
  readonly readOnly: boolean;
  readonly schemaVersion: number;
  readonly #db: DatabaseSync;
  readonly #sql: Statements;
  readonly #upcast: Upcaster;
  readonly #projectors: readonly Projector[];
  readonly #clock: () => number;
  readonly #log: Logger;
  readonly #streams = new Map<string, StreamState>();
  readonly #names = new Map<number, StreamName>();
  readonly #listeners = new Set<EventListener>();
  #lastSeq = 0;
  #lastStreamId = 0;
  #dataVersion = 0;
  #batch: PendingBatch | undefined;
  #open = true;
  #checkpointer: Worker | undefined;
  #checkpointerStart: ReturnType<typeof setTimeout> | undefined;
  /**
   * SQLite's busy wait, as PRAGMA texts switching it off and back on around a batch's BEGIN
   * (a PRAGMA acts when prepared, so each is run afresh). That wait sleeps the whole thread
   * in steps of 1, 2, 5, 10 ms: a write lock the checkpointer holds for 2 ms would stall
   * every call for 10. Instead the batch stays pending and is tried again next tick.
   */
  readonly #busyWait: { off: string; on: string };
  readonly #busyTimeoutMs: number;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** Recently committed projection rows by `projection\0streamId`, least recent first. */
  readonly #recentRows = new Map<string, ProjectionRow>();

  private constructor(db: DatabaseSync, schemaVersion: number, options: EventStoreOptions) {
    this.path = options.path;
    this.readOnly = options.readOnly ?? false;
    this.schemaVersion = schemaVersion;
    this.#db = db;
    this.#sql = prepareStatements(db, schemaVersion >= 2);
    this.#upcast = options.upcast ?? unchanged;
    this.#projectors = options.projectors ?? [];
    this.#clock = options.clock ?? Date.now;
    this.#log = options.log ?? silentLogger;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? defaultBusyTimeoutMs;
    this.#busyWait = { off: busyTimeoutPragma(0), on: busyTimeoutPragma(this.#busyTimeoutMs) };
    this.#loadCounters();
  }

  /** Opens (and for a writer, creates and migrates) the database at `options.path`. */
  static open(options: EventStoreOptions): EventStore {
    const readOnly = options.readOnly ?? false;
    const db = openDatabase(options.path, {
      readOnly,
      ...(options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs }),
    });
    try {
      const version = readOnly ? assertSchemaKnown(db, options.path) : migrate(db, options.path);
      if (version < 1) {
        throw new StoreUnavailableError(
          "malformed",
          `Database "${options.path}" is malformed: it holds no pve-cri event log`,
        );
      }
      const store = new EventStore(db, version, options);
      if (!readOnly && store.#projectors.length > 0) store.#rebuildStaleProjections();
      if (!readOnly && options.checkpointPages !== undefined) {
        db.exec(`PRAGMA wal_autocheckpoint = ${Math.max(1, Math.trunc(options.checkpointPages))}`);
      }
      if (!readOnly && options.backgroundCheckpoint) {
        const custom = options.backgroundCheckpoint === true ? {} : options.backgroundCheckpoint;
        store.#startCheckpointer({ ...defaultCheckpointPolicy, ...custom });
      }
      return store;
    } catch (error) {
      db.close();
      throw translateSqliteError(error, options.path);
    }
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Stream states the writer keeps in memory: its open streams, as far as it has met them. */
  get cachedStreams(): number {
    return this.#streams.size;
  }

  get hasProjections(): boolean {
    return this.schemaVersion >= 2;
  }

  /**
   * Appends events to one stream, atomically, if its version is what the caller expects.
   * Resolves once the events are committed (durable against a process crash).
   */
  appendToStream(
    stream: string,
    events: readonly EventInput[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    return this.appendToStreams([{ stream, events, options }]).then(([result]) => result!);
  }

  /**
   * Appends to several streams in one transaction: all or none. Every check (versions, closed
   * streams, unique keys) runs before anything is accepted, so a refusal leaves no trace.
   */
  appendToStreams(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    try {
      const { results, committed } = this.stage(appends);
      return committed.then(() => results);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The synchronous half of an append, for callers that must know at once whether it was
   * accepted: throws when refused; otherwise `committed` settles when the batch commits.
   */
  stage(appends: readonly StreamAppend[]): { results: AppendResult[]; committed: Promise<void> } {
    const batch = this.#currentBatch();
    const plan = new PendingBatch();
    const results = appends.map((a) => this.#plan(batch, plan, a));
    this.#apply(batch, plan);
    return { results, committed: batch.wait() };
  }

  /**
   * The stream's events from `fromVersion` on (1 = all). Unknown streams have none. A corrupt
   * row throws CorruptEventError, unless `onCorrupt` takes it and the read goes on.
   */
  readStream(
    stream: string,
    fromVersion = 1,
    onCorrupt?: (error: CorruptEventError) => void,
  ): RecordedEvent[] {
    return this.#guard(() => {
      const row = this.#sql.streamByName.get(stream) as { id: number; kind: string } | undefined;
      if (row === undefined) return [];
      const name = { name: stream, kind: row.kind };
      const rows = this.#sql.readStream.all(row.id, fromVersion) as unknown as EventRow[];
      return this.#decodeRows(rows, () => name, onCorrupt);
    });
  }

  /**
   * Up to `limit` events after `fromSeq`, in commit order. A corrupt row throws
   * CorruptEventError, unless `onCorrupt` takes it and the read goes on.
   */
  readAll(
    fromSeq = 0,
    limit = 1000,
    onCorrupt?: (error: CorruptEventError) => void,
  ): RecordedEvent[] {
    return this.readPage(fromSeq, limit, onCorrupt).events;
  }

  /**
   * Like readAll, plus the seq to continue from (the last row read, corrupt or not), or
   * undefined at the end of the log: for scanning the whole log page by page. With
   * `meta: false` events come with empty metadata, which folding does not need.
   */
  readPage(
    fromSeq: number,
    limit: number,
    onCorrupt?: (error: CorruptEventError) => void,
    options: { meta?: boolean } = {},
  ): { events: RecordedEvent[]; next: number | undefined } {
    return this.#guard(() => {
      const statement = options.meta === false ? this.#sql.readAllWithoutMeta : this.#sql.readAll;
      const rows = statement.all(fromSeq, limit) as unknown as EventRow[];
      const events = this.#decodeRows(rows, (row) => this.#streamName(row), onCorrupt);
      return { events, next: rows.at(-1)?.[0] };
    });
  }

  #decodeRows(
    rows: readonly EventRow[],
    nameOf: (row: EventRow) => StreamName,
    onCorrupt: ((error: CorruptEventError) => void) | undefined,
  ): RecordedEvent[] {
    const events: RecordedEvent[] = [];
    for (const row of rows) {
      try {
        events.push(decodeEvent(row, nameOf(row), this.#upcast));
      } catch (error) {
        if (!(error instanceof CorruptEventError) || onCorrupt === undefined) throw error;
        onCorrupt(error);
      }
    }
    return events;
  }

  streamInfo(stream: string): StreamInfo | undefined {
    return this.#guard(() => {
      const row = this.#sql.streamInfo.get(stream) as unknown as StreamInfoRow | undefined;
      return row === undefined ? undefined : toStreamInfo(row);
    });
  }

  /** Every stream that has events, in creation order. */
  listStreams(): StreamInfo[] {
    return this.#guard(() =>
      (this.#sql.listStreams.all() as unknown as StreamInfoRow[]).map(toStreamInfo)
    );
  }

  /** A stream's row as last committed; it may be the writer's cached copy: never change it. */
  getProjection<Doc, Summary = unknown>(
    projection: string,
    stream: string,
  ): ProjectionRow<Doc, Summary> | undefined {
    return this.#guard(() => {
      const id = this.#streams.get(stream)?.id ?? this.#streamId(stream);
      if (id === undefined) return undefined;
      const recent = this.#recentRows.get(`${projection}\0${id}`);
      if (recent !== undefined) return recent as ProjectionRow<Doc, Summary>;
      return this.#committedRow<Doc, Summary>(projection, id, stream);
    });
  }

  /** Every row of a projection, documents parsed. */
  listProjection<Doc, Summary = unknown>(projection: string): ProjectionRow<Doc, Summary>[] {
    return this.#guard(() =>
      (this.#sql.projectionRows.all(projection) as unknown as ProjectionDbRow[]).map((row) =>
        toProjectionRow<Doc, Summary>(row)
      )
    );
  }

  /** Every row of a projection with its document as stored (JSON text), unparsed. */
  listProjectionText<Summary = unknown>(projection: string): ProjectionRow<string, Summary>[] {
    return this.#guard(() =>
      (this.#sql.projectionRows.all(projection) as unknown as ProjectionDbRow[]).map((row) => ({
        stream: row.name,
        key: row.key,
        version: row.version,
        summary: JSON.parse(row.summary) as Summary,
        doc: row.doc,
      }))
    );
  }

  /**
   * Every row's summary, without the documents: cheap enough for startup and List calls.
   * Quarantined streams are left out; a row whose summary cannot be read quarantines its
   * stream (a writer records it) instead of failing the rest.
   */
  listProjectionSummaries<Summary>(projection: string): ProjectionSummary<Summary>[] {
    return this.#guard(() => {
      // Arrays, not objects: at start, 10,000 rows took 52 ms instead of 87 here.
      const rows = this.#sql.projectionSummaries.all(projection) as unknown as SummaryRow[];
      const quarantined = new Set(this.quarantined().map((q) => q.stream));
      const summaries: ProjectionSummary<Summary>[] = [];
      for (const [name, key, version, text] of rows) {
        if (quarantined.has(name)) continue;
        let summary: Summary;
        try {
          summary = JSON.parse(text) as Summary;
        } catch (error) {
          this.quarantine(
            name,
            null,
            `projection "${projection}" row is not JSON: ${(error as Error).message}`,
          );
          continue;
        }
        summaries.push({ stream: name, key, version, summary });
      }
      return summaries;
    });
  }

  /** Streams set aside because a row of theirs cannot be read. */
  quarantined(): QuarantinedStream[] {
    return this.#guard(() => quarantinedStreams(this.#db, this.schemaVersion));
  }

  /**
   * Sets a stream aside (logged; recorded unless read-only, where it is only logged): it is
   * skipped by listProjectionSummaries until repaired.
   */
  quarantine(stream: string, seq: number | null, reason: string): void {
    this.#log.error("stream quarantined: a row of it cannot be read", { stream, seq, reason });
    if (this.readOnly || this.schemaVersion < 3) return;
    this.#guard(() => quarantineStream(this.#db, stream, seq, reason, Date.now()));
  }

  /** The row holding a unique key, or undefined. */
  findByKey<Doc, Summary = unknown>(
    projection: string,
    key: string,
  ): ProjectionRow<Doc, Summary> | undefined {
    return this.#guard(() => {
      const row = this.#sql.projectionByKey.get(projection, key) as unknown as
        | ProjectionDbRow
        | undefined;
      return row === undefined ? undefined : toProjectionRow<Doc, Summary>(row);
    });
  }

  /** Calls `listener` with every committed batch of events, in commit order. */
  subscribe(listener: EventListener): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Commits whatever is pending now. */
  flush(): void {
    this.#flush();
  }

  /** Commits what is pending and closes the database. */
  close(): void {
    if (!this.#open) return;
    clearTimeout(this.#retry);
    this.#flush();
    clearTimeout(this.#checkpointerStart);
    this.#checkpointer?.terminate();
    this.#open = false;
    this.#listeners.clear();
    this.#db.close();
  }

  /**
   * Closes without committing what is pending, as a crash would: for crash tests.
   * Pending appends are rejected.
   */
  abandon(): void {
    if (!this.#open) return;
    clearTimeout(this.#retry);
    clearTimeout(this.#checkpointerStart);
    this.#checkpointer?.terminate();
    this.#open = false;
    const batch = this.#batch;
    this.#batch = undefined;
    batch?.settle(new StoreUnavailableError("closed", "The event store was closed"));
    this.#listeners.clear();
    this.#db.close();
  }

  /** Checks one append and records its changes in `plan`, on top of `batch`. */
  #plan(batch: PendingBatch, plan: PendingBatch, append: StreamAppend): AppendResult {
    const { stream, events: inputs, options = {} } = append;
    if (!this.#open) throw new StoreUnavailableError("closed", "The event store is closed");
    if (this.readOnly) throw new TypeError("The event store was opened read-only");
    if (typeof stream !== "string" || stream === "") throw new TypeError("Stream name is empty");
    if (inputs.length === 0) throw new RangeError(`No events to append to "${stream}"`);

    const known = plan.streamStates.get(stream) ?? this.#guard(() => this.#streamState(stream));
    const actual = known?.version ?? 0;
    checkExpectedVersion(stream, options.expectedVersion ?? "any", known !== undefined, actual);
    if (known?.closed) throw new StreamClosedError(stream);
    const kind = known?.kind ?? options.kind;
    if (kind === undefined) throw new TypeError(`Stream "${stream}" is new: its kind is required`);
    if (options.kind !== undefined && options.kind !== kind) {
      throw new TypeError(`Stream "${stream}" is a ${kind}, not a ${options.kind}`);
    }

    const streamId = known?.id ?? this.#lastStreamId + plan.newStreams.length + 1;
    const firstSeq = this.#lastSeq + plan.events.length + 1;
    const time = options.time ?? this.#clock();
    const pending = inputs.map((input, i) =>
      toPendingEvent(streamId, input, this.#upcast, {
        seq: firstSeq + i,
        stream,
        kind,
        version: actual + 1 + i,
        time,
      })
    );
    const events = pending.map((p) => p.event);
    this.#projectRows(batch, plan, streamId, stream, kind, events);

    const next = {
      id: streamId,
      name: stream,
      kind,
      version: actual + events.length,
      closed: options.close ?? false,
    };
    if (known === undefined) plan.newStreams.push(next);
    if (next.closed) plan.closedStreams.push(next);
    plan.streamStates.set(stream, next);
    plan.events.push(...pending);
    return { nextVersion: next.version, events };
  }

  /** Accepts a checked plan: from here on its appends are part of the batch. */
  #apply(batch: PendingBatch, plan: PendingBatch): void {
    for (const [name, state] of plan.streamStates) this.#streams.set(name, state);
    this.#lastStreamId += plan.newStreams.length;
    this.#lastSeq += plan.events.length;
    batch.absorb(plan);
  }

  /** Runs the projectors on the new events and checks unique keys, writing into `plan`. */
  #projectRows(
    batch: PendingBatch,
    plan: PendingBatch,
    streamId: number,
    stream: string,
    kind: string,
    events: readonly RecordedEvent[],
  ): void {
    const nextVersion = events.at(-1)!.version;
    for (const projector of this.#projectors) {
      if (!projector.kinds.includes(kind)) continue;
      const rowKey = `${projector.name}\0${streamId}`;
      const pending = plan.rows.get(rowKey) ?? batch.rows.get(rowKey);
      const committed = pending === undefined && streamId <= this.#lastStreamId
        ? this.#recentRows.get(rowKey) ??
          this.#guard(() => this.#committedRow(projector.name, streamId, stream))
        : undefined;
      const current = pending === undefined ? committed : pending.row ?? undefined;
      let next: ProjectionUpdate | null;
      try {
        next = projector.evolve(current, events);
      } catch (error) {
        throw new InternalError(`Projector "${projector.name}" failed on stream "${stream}"`, {
          cause: error,
          details: { stream, projection: projector.name },
        });
      }
      const row = next === null ? null : {
        stream,
        version: nextVersion,
        key: next.key,
        summary: next.summary ?? null,
        doc: next.doc,
      };
      const previousKey = current?.key ?? null;
      const key = row?.key ?? null;
      if (key !== null && key !== previousKey) {
        const holder = this.#keyHolder(batch, plan, projector.name, key);
        if (holder !== undefined && holder !== stream) {
          throw new ProjectionKeyConflictError(projector.name, key, holder);
        }
      }
      plan.rows.set(rowKey, {
        projection: projector.name,
        streamId,
        committedKey: pending === undefined ? committed?.key ?? null : pending.committedKey,
        row,
      });
      if (previousKey !== null && previousKey !== key) {
        plan.keys.set(`${projector.name}\0${previousKey}`, null);
      }
      if (key !== null) plan.keys.set(`${projector.name}\0${key}`, stream);
    }
  }

  #keyHolder(
    batch: PendingBatch,
    plan: PendingBatch,
    projection: string,
    key: string,
  ): string | undefined {
    const id = `${projection}\0${key}`;
    const pending = plan.keys.has(id) ? plan.keys.get(id) : batch.keys.get(id);
    if (pending !== undefined) return pending ?? undefined;
    return this.#guard(() => {
      const row = this.#sql.keyHolder.get(projection, key) as { name: string } | undefined;
      return row?.name;
    });
  }

  #currentBatch(): PendingBatch {
    if (this.#batch === undefined) {
      this.#batch = new PendingBatch();
      queueMicrotask(() => this.#flush("yield"));
    }
    return this.#batch;
  }

  /**
   * Commits the pending batch. `wait` blocks in SQLite's busy wait for the write lock;
   * `yield` leaves the batch pending and tries again next tick when the lock is taken.
   */
  #flush(mode: "wait" | "yield" = "wait"): void {
    const batch = this.#batch;
    this.#batch = undefined;
    if (batch === undefined || !this.#open) return;
    if (batch.events.length === 0) return batch.settle();
    try {
      if (!this.#begin(mode === "yield")) {
        this.#batch = batch;
        this.#retryLater(batch);
        return;
      }
      try {
        if (this.#readDataVersion() !== this.#dataVersion) {
          throw new AbortedError(
            `Another process wrote to "${this.path}": appends refused, state reloaded`,
          );
        }
        batch.write(this.#sql);
        this.#sql.commit.run();
      } catch (error) {
        this.#sql.rollback.run();
        throw error;
      }
    } catch (error) {
      this.#fail(batch, translateSqliteError(error, this.path));
      return;
    }
    this.#remember(batch);
    batch.settle();
    const events = batch.events.map((p) => p.event);
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch (error) {
        this.#log.error("event store listener failed", { error: String(error) });
      }
    }
  }

  /** A batch that cannot commit: its appends fail, and what they planned is forgotten. */
  #fail(batch: PendingBatch, error: unknown): void {
    this.#log.error("event store commit failed", { error: String(error) });
    this.#resetCaches();
    batch.settle(error);
  }

  /** Begins the write transaction; false when `noWait` and the lock is taken. */
  #begin(noWait: boolean): boolean {
    if (!noWait) {
      this.#sql.begin.run();
      return true;
    }
    this.#db.exec(this.#busyWait.off);
    try {
      this.#sql.begin.run();
      return true;
    } catch (error) {
      if (isBusy(error)) return false;
      throw error;
    } finally {
      this.#db.exec(this.#busyWait.on);
    }
  }

  /** The batch's appends fail as busy once they have waited the busy timeout in all. */
  #retryLater(batch: PendingBatch): void {
    const now = performance.now();
    batch.busySince ??= now;
    if (now - batch.busySince >= this.#busyTimeoutMs) {
      this.#batch = undefined;
      const message = `its write lock was held for ${this.#busyTimeoutMs} ms`;
      this.#fail(
        batch,
        new StoreUnavailableError("busy", `Database "${this.path}" is busy: ${message}`),
      );
      return;
    }
    this.#retry ??= setTimeout(() => {
      this.#retry = undefined;
      this.#flush("yield");
    }, 0);
  }

  #streamState(stream: string): StreamState | undefined {
    const cached = this.#streams.get(stream);
    if (cached !== undefined) return cached;
    const row = this.#sql.streamByName.get(stream) as
      | { id: number; kind: string; closed: number; version: number }
      | undefined;
    if (row === undefined) return undefined;
    const state = {
      id: row.id,
      name: stream,
      kind: row.kind,
      version: row.version,
      closed: row.closed !== 0,
    };
    this.#streams.set(stream, state);
    return state;
  }

  #streamId(stream: string): number | undefined {
    const row = this.#sql.streamByName.get(stream) as { id: number } | undefined;
    return row?.id;
  }

  #streamName(row: EventRow): StreamName {
    const id = row[1];
    let name = this.#names.get(id);
    if (name === undefined) {
      for (const r of this.#sql.streamNames.all() as { id: number; name: string; kind: string }[]) {
        this.#names.set(r.id, { name: r.name, kind: r.kind });
      }
      name = this.#names.get(id);
    }
    if (name === undefined) throw new CorruptEventError(`#${id}`, row[0], "its stream is missing");
    return name;
  }

  #committedRow<Doc, Summary = unknown>(
    projection: string,
    streamId: number,
    stream: string,
  ): ProjectionRow<Doc, Summary> | undefined {
    const row = this.#sql.projectionRow.get(projection, streamId) as
      | Omit<ProjectionDbRow, "name">
      | undefined;
    return row === undefined ? undefined : toProjectionRow({ ...row, name: stream });
  }

  #readDataVersion(): number {
    return (this.#sql.dataVersion.get() as { data_version: number }).data_version;
  }

  #loadCounters(): void {
    this.#guard(() => {
      this.#lastSeq = (this.#sql.lastSeq.get() as { seq: number }).seq;
      this.#lastStreamId = (this.#sql.lastStreamId.get() as { id: number }).id;
      this.#dataVersion = this.#readDataVersion();
    });
  }

  /**
   * Keeps the rows just committed: a stream that just changed is likely to change again soon
   * (every step of a lifecycle is an append), and its row need not be read and parsed back;
   * and forgets the state of streams just closed.
   */
  #remember(batch: PendingBatch): void {
    // A closed stream takes no more appends: if one is tried, its state is read back from the
    // database. Keeping it would keep every pod and container a node ever ran.
    for (const { name } of batch.closedStreams) this.#streams.delete(name);
    for (const [rowKey, pending] of batch.rows) {
      this.#recentRows.delete(rowKey);
      if (pending.row !== null) this.#recentRows.set(rowKey, pending.row);
    }
    // Oldest first in a Map: drop from the front past the limit.
    for (const rowKey of this.#recentRows.keys()) {
      if (this.#recentRows.size <= recentRowsLimit) break;
      this.#recentRows.delete(rowKey);
    }
  }

  #resetCaches(): void {
    this.#streams.clear();
    this.#names.clear();
    this.#recentRows.clear();
    try {
      this.#loadCounters();
    } catch (error) {
      this.#log.error("event store cannot reload its counters", { error: String(error) });
    }
  }

  #rebuildStaleProjections(): void {
    this.#guard(() =>
      rebuildProjections({
        db: this.#db,
        sql: this.#sql,
        projectors: this.#projectors,
        readPage: (from, limit, onCorrupt) => this.readPage(from, limit, onCorrupt),
        quarantine: (error) => this.quarantine(error.stream, error.seq, error.message),
        log: this.#log,
      })
    );
  }

  #startCheckpointer(policy: CheckpointPolicy): void {
    // Finite even for a policy that never restarts (tests use one).
    const backstop = Math.trunc(Math.min(policy.restartPages * backstopCheckpointFactor, 1e6));
    this.#db.exec(`PRAGMA wal_autocheckpoint = ${backstop}`);
    this.#db.exec(`PRAGMA journal_size_limit = ${walKeepBytes}`);
    // Spawned one interval on, as its first checkpoint would come then anyway: a worker costs
    // the opening thread 15–30 ms here, which a restart should not wait for.
    this.#checkpointerStart = setTimeout(() => {
      this.#checkpointerStart = undefined;
      const worker = new Worker(new URL("./checkpoint_worker.ts", import.meta.url).href, {
        type: "module",
      });
      worker.onerror = (event) => {
        event.preventDefault();
        this.#log.error("WAL checkpoint worker failed", { error: event.message });
      };
      worker.postMessage({ path: this.path, policy });
      this.#checkpointer = worker;
    }, policy.intervalMs);
    Deno.unrefTimer(this.#checkpointerStart);
  }

  #guard<T>(fn: () => T): T {
    if (!this.#open) throw new StoreUnavailableError("closed", "The event store is closed");
    try {
      return fn();
    } catch (error) {
      throw translateSqliteError(error, this.path);
    }
  }
}

type StreamInfoRow = [string, string, number, number, number, number];

function toStreamInfo([stream, kind, closed, version, createdAt, updatedAt]: StreamInfoRow) {
  return { stream, kind, closed: closed !== 0, version, createdAt, updatedAt };
}

/** A row of `projectionSummaries`: name, key, version, summary. */
type SummaryRow = [string, string | null, number, string];

interface ProjectionDbRow {
  name: string;
  key: string | null;
  version: number;
  summary: string;
  doc: string;
}

function toProjectionRow<Doc, Summary>(row: ProjectionDbRow): ProjectionRow<Doc, Summary> {
  return {
    stream: row.name,
    key: row.key,
    version: row.version,
    summary: JSON.parse(row.summary) as Summary,
    doc: JSON.parse(row.doc) as Doc,
  };
}

function checkExpectedVersion(
  stream: string,
  expected: ExpectedVersion,
  exists: boolean,
  actual: number,
): void {
  const ok = expected === "any" ||
    (expected === "no_stream" && !exists) ||
    (expected === "stream_exists" && exists) ||
    expected === actual;
  if (!ok) throw new ExpectedVersionConflictError(stream, expected, actual);
}

/**
 * The row to store (the payload as given) and the event as readers will see it (upcast, so
 * projectors and subscribers meet today's shape even when an old writer's event is appended).
 */
function toPendingEvent(
  streamId: number,
  input: EventInput,
  upcast: Upcaster,
  at: Pick<RecordedEvent, "seq" | "stream" | "kind" | "version" | "time">,
): PendingEvent {
  if (typeof input.type !== "string" || input.type === "") {
    throw new TypeError(`Event ${at.version} of "${at.stream}" has no type`);
  }
  if (!Number.isInteger(input.typeVersion) || input.typeVersion < 1) {
    throw new TypeError(`Event ${input.type} of "${at.stream}" has no valid type version`);
  }
  const meta = input.meta ?? {};
  const dataJson = JSON.stringify(input.data);
  if (dataJson === undefined) throw new TypeError(`Event ${input.type} has no JSON payload`);
  const current = upcast({ type: input.type, typeVersion: input.typeVersion, data: input.data });
  const event: RecordedEvent = { ...at, type: input.type, ...current, meta };
  return {
    streamId,
    event,
    typeVersion: input.typeVersion,
    dataJson,
    metaJson: JSON.stringify(meta),
  };
}
