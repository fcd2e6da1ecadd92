/**
 * Quarantined streams: a stream with a row that cannot be read (an event, or its projection)
 * is set aside instead of failing the whole log. It is skipped when streams are loaded and
 * listed here until an operator repairs it; every other stream goes on.
 */
import type { DatabaseSync } from "node:sqlite";

export interface QuarantinedStream {
  stream: string;
  kind: string;
  /** The first unreadable event's seq; null when the projection row was the bad one. */
  seq: number | null;
  reason: string;
  /** When it was set aside (ms since the epoch). */
  time: number;
}

/** Sets a stream aside; a stream already quarantined keeps its first reason. */
export function quarantineStream(
  db: DatabaseSync,
  stream: string,
  seq: number | null,
  reason: string,
  time: number,
): void {
  db.prepare(
    "INSERT INTO quarantine (stream_id, seq, reason, time) " +
      "SELECT id, ?, ?, ? FROM streams WHERE name = ? ON CONFLICT (stream_id) DO NOTHING",
  ).run(seq, reason, time, stream);
}

/** Every quarantined stream; none in a database from before quarantine existed. */
export function quarantinedStreams(db: DatabaseSync, schemaVersion: number): QuarantinedStream[] {
  if (schemaVersion < 3) return [];
  return db.prepare(
    "SELECT s.name AS stream, s.kind AS kind, q.seq AS seq, q.reason AS reason, q.time AS time " +
      "FROM quarantine q JOIN streams s ON s.id = q.stream_id ORDER BY q.stream_id",
  ).all() as unknown as QuarantinedStream[];
}
