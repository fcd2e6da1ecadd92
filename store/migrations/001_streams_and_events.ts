import type { Migration } from "./mod.ts";

/** The log itself: streams by a small integer id (short index keys), events by seq. */
export const streamsAndEvents: Migration = {
  version: 1,
  name: "streams and events",
  sql: `
    CREATE TABLE streams (
      id     INTEGER PRIMARY KEY,
      name   TEXT NOT NULL UNIQUE,
      kind   TEXT NOT NULL,
      closed INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE events (
      seq          INTEGER PRIMARY KEY,
      stream_id    INTEGER NOT NULL REFERENCES streams (id),
      version      INTEGER NOT NULL,
      type         TEXT NOT NULL,
      type_version INTEGER NOT NULL,
      data         TEXT NOT NULL,
      meta         TEXT NOT NULL,
      time         INTEGER NOT NULL,
      UNIQUE (stream_id, version)
    );
  `,
};
