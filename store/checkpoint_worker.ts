/// <reference lib="deno.worker" />
/**
 * Runs WAL checkpoints on its own thread and its own connection, so the fsyncs they need never
 * stall an append on the main thread (they took 10–14 ms every few hundred commits there).
 * PASSIVE: never waits for, nor blocks, the writer.
 */
import { DatabaseSync } from "node:sqlite";

interface Start {
  path: string;
  intervalMs: number;
}

let db: DatabaseSync | undefined;
let timer: ReturnType<typeof setInterval> | undefined;

self.onmessage = (event: MessageEvent<Start | "stop">) => {
  if (event.data === "stop") {
    if (timer !== undefined) clearInterval(timer);
    try {
      db?.close();
    } catch { /* closing is best effort */ }
    self.postMessage("stopped");
    return;
  }
  const { path, intervalMs } = event.data;
  db = new DatabaseSync(path);
  db.exec("PRAGMA busy_timeout = 1000");
  timer = setInterval(() => {
    try {
      // exec, not a kept statement: a statement left open holds a read snapshot, and the
      // writer can then never restart the WAL from its beginning.
      db!.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch {
      // Busy or closing: the next tick tries again; the writer's backstop bounds the WAL.
    }
  }, intervalMs);
  self.postMessage("started");
};
