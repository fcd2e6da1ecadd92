import type { Statements } from "./statements.ts";
import type { ProjectionRow, RecordedEvent } from "./types.ts";

/** A stream as the writer knows it, including appends not yet committed. */
export interface StreamState {
  id: number;
  name: string;
  kind: string;
  version: number;
  closed: boolean;
}

export interface PendingRow {
  projection: string;
  streamId: number;
  /** The key the committed row holds, to release it when it changes. */
  committedKey: string | null;
  row: ProjectionRow | null;
}

export interface PendingEvent {
  streamId: number;
  /** As readers see it: upcast to today's payload shape. */
  event: RecordedEvent;
  /** As stored: the version and payload the writer gave. */
  typeVersion: number;
  dataJson: string;
  metaJson: string;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Appends accepted in this tick, committed together (group commit): one transaction, one
 * WAL write, however many callers. Every caller's promise settles only after the commit.
 */
export class PendingBatch {
  /** Streams as they stand after a plan's appends (used while planning). */
  readonly streamStates = new Map<string, StreamState>();
  readonly newStreams: StreamState[] = [];
  readonly closedStreams: StreamState[] = [];
  readonly events: PendingEvent[] = [];
  /** Projection rows by `projection\0streamId`, last write wins. */
  readonly rows = new Map<string, PendingRow>();
  /** Unique keys claimed (stream name) or released (null) by `projection\0key`. */
  readonly keys = new Map<string, string | null>();
  readonly waiters: Waiter[] = [];
  /** When a commit first found the write lock taken (performance.now()). */
  busySince: number | undefined;

  /** Takes over a plan's changes: the plan was made on top of this batch. */
  absorb(plan: PendingBatch): void {
    this.newStreams.push(...plan.newStreams);
    this.closedStreams.push(...plan.closedStreams);
    this.events.push(...plan.events);
    for (const [key, row] of plan.rows) this.rows.set(key, row);
    for (const [key, holder] of plan.keys) this.keys.set(key, holder);
  }

  wait(): Promise<void> {
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Writes everything; the caller wraps it in a transaction. */
  write(sql: Statements): void {
    for (const s of this.newStreams) sql.insertStream.run(s.id, s.name, s.kind, 0);
    for (const { streamId, event, typeVersion, dataJson, metaJson } of this.events) {
      sql.insertEvent.run(
        event.seq,
        streamId,
        event.version,
        event.type,
        typeVersion,
        dataJson,
        metaJson,
        event.time,
      );
    }
    for (const { id } of this.closedStreams) sql.closeStream.run(id);
    this.#writeProjections(sql);
  }

  #writeProjections(sql: Statements): void {
    // Release keys before claiming any, so a key can move between streams in one batch.
    for (const p of this.rows.values()) {
      const key = p.row?.key ?? null;
      if (p.committedKey !== null && p.committedKey !== key) {
        sql.deleteKey.run(p.projection, p.committedKey);
      }
    }
    for (const p of this.rows.values()) {
      if (p.row === null) {
        sql.deleteProjection.run(p.projection, p.streamId);
        continue;
      }
      const { key, version, summary, doc } = p.row;
      sql.upsertProjection.run(
        p.projection,
        p.streamId,
        key,
        version,
        JSON.stringify(summary),
        JSON.stringify(doc),
      );
      if (key !== null && key !== p.committedKey) sql.insertKey.run(p.projection, key, p.streamId);
    }
  }

  settle(error?: unknown): void {
    for (const waiter of this.waiters) {
      if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
  }
}
