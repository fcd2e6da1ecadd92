import type { Migration } from "./mod.ts";

/**
 * Every live stream's summary is read at each start: from this index the scan reads ~360
 * bytes a row, not the whole row with its document (~1.2 KB). With 10,000 containers here,
 * 14 ms instead of 31 (fastest of seven).
 */
export const summaryIndex: Migration = {
  version: 4,
  name: "summary index",
  sql: `
    CREATE INDEX projection_summaries
      ON projections (projection, stream_id, key, version, summary);
  `,
};
