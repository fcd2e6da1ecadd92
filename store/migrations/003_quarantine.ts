import type { Migration } from "./mod.ts";

/**
 * Streams set aside because a row of theirs cannot be read: never loaded, never appended to,
 * reported until an operator repairs them. One row per stream, the first bad row's seq.
 */
export const quarantine: Migration = {
  version: 3,
  name: "quarantine",
  sql: `
    CREATE TABLE quarantine (
      stream_id INTEGER PRIMARY KEY REFERENCES streams (id),
      seq       INTEGER,
      reason    TEXT NOT NULL,
      time      INTEGER NOT NULL
    );
  `,
};
