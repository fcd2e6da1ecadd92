/**
 * An append-only file of JSON lines: the simulator's cheap way to persist before answering.
 * One `write` per entry (about 10 µs here, against 300 µs for creating a file on ext4), so a
 * killed process leaves at most a torn last line, which reading skips. Rewritten whole, via
 * rename, when it has grown well past what it holds.
 */
import { readTextIfExists, writeFileAtomic } from "./files.ts";

const encoder = new TextEncoder();

export class Journal<T> {
  readonly #path: string;
  #file: Deno.FsFile;
  #lines = 0;

  constructor(path: string) {
    this.#path = path;
    this.#file = Deno.openSync(path, { append: true, create: true });
  }

  /** Every complete entry, oldest first. */
  read(): T[] {
    const entries: T[] = [];
    for (const line of (readTextIfExists(this.#path) ?? "").split("\n")) {
      if (line === "") continue;
      try {
        entries.push(JSON.parse(line) as T);
      } catch {
        // a line torn by a crash mid-write
      }
    }
    this.#lines = entries.length;
    return entries;
  }

  append(entry: T): void {
    this.#file.writeSync(encoder.encode(JSON.stringify(entry) + "\n"));
    this.#lines++;
  }

  /** Lines written since the last rewrite (to decide when to compact). */
  get lines(): number {
    return this.#lines;
  }

  /** Replaces the whole journal with these entries. */
  rewrite(entries: readonly T[]): void {
    this.#file.close();
    writeFileAtomic(this.#path, entries.map((e) => JSON.stringify(e) + "\n").join(""));
    this.#file = Deno.openSync(this.#path, { append: true, create: true });
    this.#lines = entries.length;
  }

  close(): void {
    this.#file.close();
  }
}
