/// <reference lib="deno.worker" />
/**
 * WAL checkpoints on their own thread and connection, so the page copies and fsyncs they need
 * never stall a commit (inside a commit they cost ~8 ms every 1,000 pages here).
 *
 * Each tick, a PASSIVE checkpoint, which neither waits for nor blocks the writer. When one
 * completes between two commits, the writer's next commit starts the WAL over by itself. Under
 * steady load that seldom happens, so once the WAL holds `restartPages` a RESTART with no busy
 * wait forces it: it holds the writer's lock while it copies what arrived since the PASSIVE
 * and syncs (a few ms), so it runs only that seldom. Restarting on every tick instead put such
 * a wait, and the header sync of a new WAL, in front of a commit several times a second.
 */
import { DatabaseSync } from "node:sqlite";
import type { CheckpointPolicy } from "./event_store.ts";

interface Start {
  path: string;
  policy: CheckpointPolicy;
}

let db: DatabaseSync | undefined;

/** A RESTART that found the writer mid-commit tries again this soon, not a whole tick later. */
const restartRetryMs = 5;
const restartAttempts = 20;

self.onmessage = (event: MessageEvent<Start>) => {
  const { path, policy } = event.data;
  db = new DatabaseSync(path);
  db.exec("PRAGMA busy_timeout = 0");
  setInterval(() => checkpoint(policy.restartPages), policy.intervalMs);
};

function checkpoint(restartPages: number): void {
  try {
    const passive = db!.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as { log: number };
    if (passive.log >= restartPages) restart(restartAttempts);
  } catch {
    // A PASSIVE never waits either; the next tick tries again.
  }
}

function restart(attemptsLeft: number): void {
  let busy = true;
  try {
    busy = (db!.prepare("PRAGMA wal_checkpoint(RESTART)").get() as { busy: number }).busy !== 0;
  } catch {
    // SQLITE_BUSY as an error: the writer held its lock.
  }
  if (busy && attemptsLeft > 1) setTimeout(() => restart(attemptsLeft - 1), restartRetryMs);
}
