import type { Migration } from "./mod.ts";

/**
 * Read models kept inside the append transaction. Unique keys live in their own table so a
 * row update that keeps its key touches no unique index.
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
