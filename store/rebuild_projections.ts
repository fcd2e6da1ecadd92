import type { DatabaseSync } from "node:sqlite";
import { InternalError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { CorruptEventError } from "./errors.ts";
import type { Statements } from "./statements.ts";
import type { ProjectionRow, Projector, RecordedEvent } from "./types.ts";

export interface RebuildInput {
  db: DatabaseSync;
  sql: Statements;
  projectors: readonly Projector[];
  readPage(
    fromSeq: number,
    limit: number,
    onCorrupt: (error: CorruptEventError) => void,
  ): { events: RecordedEvent[]; next: number | undefined };
  /** Sets aside a stream with an unreadable event: it gets no projection row. */
  quarantine(error: CorruptEventError): void;
  log: Logger;
}

const pageSize = 5000;

/**
 * Rebuilds, from the whole log, every projection whose stored revision is not the projector's
 * (a new projector, a changed one, or a database migrated from before projections existed).
 */
export function rebuildProjections(input: RebuildInput): void {
  const { db, sql, log } = input;
  const stored = new Map(
    (db.prepare("SELECT projection, revision FROM projection_revisions").all() as {
      projection: string;
      revision: number;
    }[]).map((r) => [r.projection, r.revision]),
  );
  const stale = input.projectors.filter((p) => stored.get(p.name) !== p.revision);
  if (stale.length === 0) return;

  const rows = new Map<string, Map<number, ProjectionRow>>(stale.map((p) => [p.name, new Map()]));
  const streamIds = new Map<string, number>();
  const broken = new Set<string>();
  const onCorrupt = (error: CorruptEventError) => {
    if (broken.has(error.stream)) return;
    broken.add(error.stream);
    input.quarantine(error);
  };
  for (let from: number | undefined = 0; from !== undefined;) {
    const page = input.readPage(from, pageSize, onCorrupt);
    const events = page.events;
    from = page.next;
    for (const event of events) {
      if (broken.has(event.stream)) continue;
      if (!streamIds.has(event.stream)) {
        streamIds.set(event.stream, streamIdOf(db, event.stream));
      }
      const id = streamIds.get(event.stream)!;
      for (const projector of stale) {
        if (!projector.kinds.includes(event.kind)) continue;
        const byStream = rows.get(projector.name)!;
        const next = projector.evolve(byStream.get(id), [event]);
        if (next === null) byStream.delete(id);
        else {
          byStream.set(id, {
            stream: event.stream,
            version: event.version,
            key: next.key,
            summary: next.summary ?? null,
            doc: next.doc,
          });
        }
      }
    }
  }

  sql.begin.run();
  try {
    for (const projector of stale) {
      db.prepare("DELETE FROM projections WHERE projection = ?").run(projector.name);
      db.prepare("DELETE FROM projection_keys WHERE projection = ?").run(projector.name);
      const holders = new Map<string, string>();
      for (const [id, row] of rows.get(projector.name)!) {
        if (broken.has(row.stream)) continue;
        sql.upsertProjection.run(
          projector.name,
          id,
          row.key,
          row.version,
          JSON.stringify(row.summary),
          JSON.stringify(row.doc),
        );
        if (row.key === null) continue;
        const holder = holders.get(row.key);
        if (holder !== undefined) {
          throw new InternalError(
            `Projection "${projector.name}" gives key "${row.key}" to both "${holder}" and ` +
              `"${row.stream}"`,
          );
        }
        holders.set(row.key, row.stream);
        sql.insertKey.run(projector.name, row.key, id);
      }
      db.prepare(
        "INSERT INTO projection_revisions (projection, revision) VALUES (?, ?) " +
          "ON CONFLICT (projection) DO UPDATE SET revision = excluded.revision",
      ).run(projector.name, projector.revision);
    }
    sql.commit.run();
  } catch (error) {
    sql.rollback.run();
    throw error;
  }
  log.info("projections rebuilt", { projections: stale.map((p) => p.name).join(",") });
}

function streamIdOf(db: DatabaseSync, stream: string): number {
  const row = db.prepare("SELECT id FROM streams WHERE name = ?").get(stream) as { id: number };
  return row.id;
}
