import type { DatabaseSync } from "node:sqlite";
import { StoreUnavailableError } from "../errors.ts";
import { streamsAndEvents } from "./001_streams_and_events.ts";
import { projections } from "./002_projections.ts";
import { quarantine } from "./003_quarantine.ts";
import { summaryIndex } from "./004_summary_index.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Every schema version in order; a database's `user_version` says which it has. */
export const migrations: readonly Migration[] = [
  streamsAndEvents,
  projections,
  quarantine,
  summaryIndex,
];
export const latestSchemaVersion = migrations.length;

export function schemaVersion(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number };
  return row.user_version;
}

/** Refuses a database written by a newer pve-cri: its meaning is unknown to us. */
export function assertSchemaKnown(db: DatabaseSync, path: string): number {
  const version = schemaVersion(db);
  if (version > latestSchemaVersion) {
    throw new StoreUnavailableError(
      "too_new",
      `Database "${path}" has schema version ${version}, newer than this pve-cri knows ` +
        `(${latestSchemaVersion}): use a newer pve-cri`,
    );
  }
  return version;
}

/** Brings the schema up to `target` (default: latest), one transaction per migration. */
export function migrate(db: DatabaseSync, path: string, target = latestSchemaVersion): number {
  let version = assertSchemaKnown(db, path);
  for (const migration of migrations) {
    if (migration.version <= version || migration.version > target) continue;
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(migration.sql);
      db.exec(`PRAGMA user_version = ${migration.version}`);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
    version = migration.version;
  }
  return version;
}
