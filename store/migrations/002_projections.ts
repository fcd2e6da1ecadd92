import type { Migration } from "./mod.ts";

/**
 * Read models kept inside the append transaction: a small summary (what List calls and
 * startup read) and the full document. A rowid table, so a row of a few KB stays on its leaf
 * page (an index b-tree, as WITHOUT ROWID uses, overflows past ~1 KB) and an update that keeps
 * (projection, stream) touches no index. Unique keys live in their own table for the same
 * reason. Every commit writes its pages to the WAL and every 1,000 pages costs a checkpoint.
 */
export const projections: Migration = {
  version: 2,
  name: "projections",
  sql: `
    CREATE TABLE projections (
      id         INTEGER PRIMARY KEY,
      projection TEXT NOT NULL,
      stream_id  INTEGER NOT NULL REFERENCES streams (id),
      key        TEXT,
      version    INTEGER NOT NULL,
      summary    TEXT NOT NULL,
      doc        TEXT NOT NULL,
      UNIQUE (projection, stream_id)
    );
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
