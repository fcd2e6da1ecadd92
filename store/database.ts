import { DatabaseSync } from "node:sqlite";
import { StoreUnavailableError } from "./errors.ts";

export interface OpenDatabaseOptions {
  readOnly?: boolean;
  /** How long a statement waits for a lock held by another connection. */
  busyTimeoutMs?: number;
}

/** How long a statement waits for a lock held by another connection, unless told. */
export const defaultBusyTimeoutMs = 5000;

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CORRUPT = 11;
const SQLITE_CANTOPEN = 14;
const SQLITE_NOTADB = 26;

/**
 * Opens the database file. A writer creates it (and its directory) readable by root only:
 * container env values live in it. WAL with synchronous=NORMAL: a process crash loses no
 * committed transaction; a power loss may lose the last ones (see README, Durability).
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): DatabaseSync {
  const readOnly = options.readOnly ?? false;
  if (readOnly) {
    if (!exists(path)) throw new StoreUnavailableError("missing", `No database at "${path}"`);
  } else {
    createPrivateFile(path);
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly });
  } catch (error) {
    throw translateSqliteError(error, path);
  }
  try {
    db.exec(busyTimeoutPragma(options.busyTimeoutMs ?? defaultBusyTimeoutMs));
    if (!readOnly) {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
    }
    // Touch the schema now, so a file that is not a database fails here with a clear message.
    db.prepare("SELECT count(*) FROM sqlite_master").get();
  } catch (error) {
    db.close();
    throw translateSqliteError(error, path);
  }
  return db;
}

export function busyTimeoutPragma(ms: number): string {
  return `PRAGMA busy_timeout = ${Math.max(0, Math.trunc(ms))}`;
}

/** Maps SQLite's errors to the store's typed ones; anything else is returned unchanged. */
export function translateSqliteError(error: unknown, path: string): unknown {
  if (error instanceof StoreUnavailableError) return error;
  const code = sqliteCode(error);
  const text = error instanceof Error ? error.message : String(error);
  switch (code) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return new StoreUnavailableError("busy", `Database "${path}" is busy: ${text}`, error);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return new StoreUnavailableError(
        "malformed",
        `Database "${path}" is malformed: ${text}`,
        error,
      );
    case SQLITE_CANTOPEN:
      return new StoreUnavailableError("missing", `Cannot open database "${path}": ${text}`, error);
  }
  if (text.startsWith("unable to open database file")) {
    return new StoreUnavailableError("missing", `Cannot open database "${path}": ${text}`, error);
  }
  return error;
}

// Some node:sqlite calls (exec) throw without `errcode`: recognise SQLite's own texts too.
const codeByText: [RegExp, number][] = [
  [/^database is locked|^database table is locked|^database is busy/, SQLITE_BUSY],
  [/^database disk image is malformed/, SQLITE_CORRUPT],
  [/^file is not a database/, SQLITE_NOTADB],
];

/** Whether SQLite refused because another connection holds the lock it needs. */
export function isBusy(error: unknown): boolean {
  return sqliteCode(error) === SQLITE_BUSY;
}

function sqliteCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { errcode?: unknown }).errcode;
  // Extended result codes carry the primary code in the low byte.
  if (typeof code === "number") return code & 0xff;
  const text = error instanceof Error ? error.message : "";
  return codeByText.find(([pattern]) => pattern.test(text))?.[1];
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw new StoreUnavailableError("io", `Cannot read "${path}": ${String(error)}`, error);
  }
}

function createPrivateFile(path: string): void {
  const slash = path.lastIndexOf("/");
  try {
    if (slash > 0) Deno.mkdirSync(path.slice(0, slash), { recursive: true, mode: 0o700 });
    const file = Deno.openSync(path, { create: true, write: true, mode: 0o600 });
    file.close();
    Deno.chmodSync(path, 0o600);
  } catch (error) {
    throw new StoreUnavailableError(
      "io",
      `Cannot create database "${path}": ${String(error)}`,
      error,
    );
  }
}
