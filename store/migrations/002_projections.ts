import type { Migration } from "./mod.ts";

/**
 * Read models kept inside the append transaction: a small summary (what List calls and
 * startup read) and the full document. Unique keys live in their own table so a row update
 * that keeps its key touches no unique index.
 */
export const projections: Migration = {
  version: 2,
  name: "projections",
  sql: `
    CREATE TABLE projections (
      projection TEXT NOT NULL,
      stream_id  INTEGER NOT NULL REFERENCES streams (id),
      key        TEXT,
      version    INTEGER NOT NULL,
      summary    TEXT NOT NULL,
      doc        TEXT NOT NULL,
      PRIMARY KEY (projection, stream_id)
    ) WITHOUT ROWID;
    CREATE TABLE projection_keys (
      projection TEXT NOT NULL,
      key        TEXT NOT NULL,
      stream_id  INTEGER NOT NULL REFERENCES streams (id),
      PRIMARY KEY (projection, key)
    ) WITHOUT ROWID;
    CREATE TABLE projection_revisions (
      projection TEXT PRIMARY KEY,
      revision   INTEGER NOT NULL
    );
  `,
};
