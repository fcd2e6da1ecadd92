import type { DatabaseSync, StatementSync } from "node:sqlite";

/** Every statement the store runs, prepared once per connection. */
export interface Statements {
  begin: StatementSync;
  commit: StatementSync;
  rollback: StatementSync;
  dataVersion: StatementSync;
  lastSeq: StatementSync;
  lastStreamId: StatementSync;
  streamByName: StatementSync;
  streamNames: StatementSync;
  insertStream: StatementSync;
  closeStream: StatementSync;
  insertEvent: StatementSync;
  readStream: StatementSync;
  readAll: StatementSync;
  readAllWithoutMeta: StatementSync;
  listStreams: StatementSync;
  streamInfo: StatementSync;
  projectionRow: StatementSync;
  projectionRows: StatementSync;
  projectionSummaries: StatementSync;
  projectionByKey: StatementSync;
  keyHolder: StatementSync;
  upsertProjection: StatementSync;
  deleteProjection: StatementSync;
  insertKey: StatementSync;
  deleteKey: StatementSync;
}

export const projectionStatements = new Set<keyof Statements>([
  "projectionRow",
  "projectionRows",
  "projectionSummaries",
  "projectionByKey",
  "keyHolder",
  "upsertProjection",
  "deleteProjection",
  "insertKey",
  "deleteKey",
]);

const sql: Record<keyof Statements, string> = {
  begin: "BEGIN IMMEDIATE",
  commit: "COMMIT",
  rollback: "ROLLBACK",
  dataVersion: "PRAGMA data_version",
  lastSeq: "SELECT coalesce(max(seq), 0) AS seq FROM events",
  lastStreamId: "SELECT coalesce(max(id), 0) AS id FROM streams",
  streamByName: `
    SELECT id, kind, closed,
           (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = streams.id) AS version
    FROM streams WHERE name = ?`,
  streamNames: "SELECT id, name, kind FROM streams",
  insertStream: "INSERT INTO streams (id, name, kind, closed) VALUES (?, ?, ?, ?)",
  closeStream: "UPDATE streams SET closed = 1 WHERE id = ?",
  insertEvent: `
    INSERT INTO events (seq, stream_id, version, type, type_version, data, meta, time)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  readStream: `
    SELECT seq, stream_id, version, type, type_version, data, meta, time
    FROM events WHERE stream_id = ? AND version >= ? ORDER BY version`,
  readAll: `
    SELECT seq, stream_id, version, type, type_version, data, meta, time
    FROM events WHERE seq > ? ORDER BY seq LIMIT ?`,
  // Folding needs no metadata: '{}' in its place saves reading and parsing it.
  readAllWithoutMeta: `
    SELECT seq, stream_id, version, type, type_version, data, '{}', time
    FROM events WHERE seq > ? ORDER BY seq LIMIT ?`,
  listStreams: `
    SELECT s.name, s.kind, s.closed, last.version, first.time, last.time
    FROM streams s
    JOIN events last ON last.stream_id = s.id
      AND last.version = (SELECT max(version) FROM events WHERE stream_id = s.id)
    JOIN events first ON first.stream_id = s.id AND first.version = 1
    ORDER BY s.id`,
  streamInfo: `
    SELECT s.name, s.kind, s.closed, last.version, first.time, last.time
    FROM streams s
    JOIN events last ON last.stream_id = s.id
      AND last.version = (SELECT max(version) FROM events WHERE stream_id = s.id)
    JOIN events first ON first.stream_id = s.id AND first.version = 1
    WHERE s.name = ?`,
  projectionRow: `
    SELECT key, version, summary, doc FROM projections WHERE projection = ? AND stream_id = ?`,
  projectionRows: `
    SELECT s.name, p.key, p.version, p.summary, p.doc
    FROM projections p JOIN streams s ON s.id = p.stream_id
    WHERE p.projection = ? ORDER BY p.stream_id`,
  projectionSummaries: `
    SELECT s.name, p.key, p.version, p.summary
    FROM projections p JOIN streams s ON s.id = p.stream_id
    WHERE p.projection = ? ORDER BY p.stream_id`,
  projectionByKey: `
    SELECT s.name, p.key, p.version, p.summary, p.doc
    FROM projection_keys k
    JOIN projections p ON p.projection = k.projection AND p.stream_id = k.stream_id
    JOIN streams s ON s.id = k.stream_id
    WHERE k.projection = ? AND k.key = ?`,
  keyHolder: `
    SELECT s.name FROM projection_keys k JOIN streams s ON s.id = k.stream_id
    WHERE k.projection = ? AND k.key = ?`,
  upsertProjection: `
    INSERT INTO projections (projection, stream_id, key, version, summary, doc)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (projection, stream_id) DO UPDATE SET
      key = excluded.key, version = excluded.version, summary = excluded.summary,
      doc = excluded.doc`,
  deleteProjection: "DELETE FROM projections WHERE projection = ? AND stream_id = ?",
  insertKey: "INSERT INTO projection_keys (projection, key, stream_id) VALUES (?, ?, ?)",
  deleteKey: "DELETE FROM projection_keys WHERE projection = ? AND key = ?",
};

/**
 * Prepares the statements. A database older than the projections schema (replay reads such
 * files without migrating them) gets no projection statements.
 */
export function prepareStatements(db: DatabaseSync, withProjections: boolean): Statements {
  const prepared: Partial<Record<keyof Statements, StatementSync>> = {};
  for (const [name, text] of Object.entries(sql) as [keyof Statements, string][]) {
    if (!withProjections && projectionStatements.has(name)) continue;
    prepared[name] = db.prepare(text);
  }
  const arrays = [
    "readAll",
    "readAllWithoutMeta",
    "readStream",
    "listStreams",
    "streamInfo",
    "projectionSummaries",
  ] as const;
  for (const name of arrays) {
    // Rows as arrays: half the cost of objects when replay reads a million of them.
    // (A schema-1 log, read by replay, has no projection statements.)
    (prepared[name] as (StatementSync & { setReturnArrays(on: boolean): void }) | undefined)
      ?.setReturnArrays(true);
  }
  return prepared as Statements;
}
