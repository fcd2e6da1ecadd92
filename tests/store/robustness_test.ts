import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  CorruptEventError,
  EventStore,
  latestSchemaVersion,
  migrate,
  type Projector,
  StoreUnavailableError,
} from "../../store/mod.ts";
import { tempDir } from "../_support/temp_dir.ts";

const ev = (type: string, data: unknown = {}) => ({ type, typeVersion: 1, data });

Deno.test("every acknowledged append survives the writer being SIGKILLed", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../_support/append_until_killed.ts", import.meta.url).pathname,
      path,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const acked: number[] = [];
  const decoder = new TextDecoderStream();
  const reader = child.stdout.pipeThrough(decoder).getReader();
  let buffer = "";
  while (acked.length < 300) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop()!;
    acked.push(...lines.map(Number));
  }
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();

  const store = EventStore.open({ path });
  try {
    assert.ok(acked.length >= 300, `the child acknowledged ${acked.length} appends`);
    const stored = new Set(store.readAll(0, 1_000_000).map((e) => e.seq));
    const lost = acked.filter((seq) => !stored.has(seq));
    assert.deepEqual(lost, [], "acknowledged appends lost");
  } finally {
    store.close();
  }
});

Deno.test("a garbage row is reported with its stream and seq; other streams stay readable", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  const store = EventStore.open({ path });
  await store.appendToStream("good", [ev("One"), ev("Two")], { kind: "k" });
  await store.appendToStream("bad", [ev("One"), ev("Two")], { kind: "k" });
  await store.appendToStream("good", [ev("Three")]);
  store.close();

  const raw = new DatabaseSync(path);
  raw.exec("UPDATE events SET data = '{not json' WHERE seq = 4");
  raw.close();

  const reopened = EventStore.open({ path, readOnly: true });
  try {
    assert.deepEqual(reopened.readStream("good").map((e) => e.type), ["One", "Two", "Three"]);
    assert.throws(() => reopened.readStream("bad"), (error: unknown) => {
      assert.ok(error instanceof CorruptEventError);
      assert.equal(error.stream, "bad");
      assert.equal(error.seq, 4);
      assert.match(error.message, /Corrupt event at seq 4 in stream "bad": data is not JSON/);
      return true;
    });
    assert.throws(() => reopened.readAll(0, 10), CorruptEventError);
    const corrupt: CorruptEventError[] = [];
    const all = reopened.readAll(0, 10, (error) => corrupt.push(error));
    assert.deepEqual(all.map((e) => e.seq), [1, 2, 3, 5]);
    assert.deepEqual(corrupt.map((e) => [e.stream, e.seq]), [["bad", 4]]);
  } finally {
    reopened.close();
  }
});

Deno.test("a database from an older schema is migrated on open, its events intact", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  // Schema version 1: the log only, written as the first release wrote it.
  const old = new DatabaseSync(path);
  old.exec("PRAGMA journal_mode = WAL");
  assert.equal(migrate(old, path, 1), 1);
  old.exec(`
    INSERT INTO streams (id, name, kind, closed) VALUES (1, 'thing-1', 'thing', 0);
    INSERT INTO events (seq, stream_id, version, type, type_version, data, meta, time)
      VALUES (1, 1, 1, 'Named', 1, '{"name":"one"}', '{}', 1700000000000),
             (2, 1, 2, 'Poked', 1, '{}', '{}', 1700000000001);
  `);
  old.close();

  const names: Projector<{ name: string }> = {
    name: "names",
    revision: 1,
    kinds: ["thing"],
    evolve(current, events) {
      let name = current?.doc.name ?? "";
      for (const e of events) if (e.type === "Named") name = (e.data as { name: string }).name;
      return { key: name, doc: { name } };
    },
  };
  const store = EventStore.open({ path, projectors: [names] });
  try {
    assert.equal(store.schemaVersion, latestSchemaVersion);
    assert.deepEqual(
      store.readStream("thing-1").map((e) => [e.seq, e.type, e.data, e.time]),
      [[1, "Named", { name: "one" }, 1700000000000], [2, "Poked", {}, 1700000000001]],
    );
    assert.deepEqual(store.findByKey("names", "one")?.doc, { name: "one" });
    const { events } = await store.appendToStream("thing-1", [ev("Poked")], { expectedVersion: 2 });
    assert.equal(events[0]!.seq, 3);
  } finally {
    store.close();
  }
});

Deno.test("a database from a newer schema is refused with a clear message", () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  EventStore.open({ path }).close();
  const raw = new DatabaseSync(path);
  raw.exec(`PRAGMA user_version = ${latestSchemaVersion + 1}`);
  raw.close();
  for (const readOnly of [false, true]) {
    assert.throws(() => EventStore.open({ path, readOnly }), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError);
      assert.equal(error.reason, "too_new");
      assert.match(error.message, /newer than this pve-cri knows/);
      return true;
    });
  }
});

Deno.test("missing, malformed and truncated files fail with typed errors", async () => {
  using dir = tempDir();
  const unavailable = (reason: string, pattern: RegExp) => (error: unknown) => {
    assert.ok(error instanceof StoreUnavailableError, String(error));
    assert.equal(error.reason, reason);
    assert.match(error.message, pattern);
    return true;
  };
  assert.throws(
    () => EventStore.open({ path: `${dir.path}/absent.db`, readOnly: true }),
    unavailable("missing", /No database at/),
  );
  Deno.writeTextFileSync(`${dir.path}/garbage.db`, "not a database at all ".repeat(200));
  assert.throws(
    () => EventStore.open({ path: `${dir.path}/garbage.db` }),
    unavailable("malformed", /is malformed/),
  );

  const path = `${dir.path}/big.db`;
  const store = EventStore.open({ path });
  for (let i = 0; i < 50; i++) {
    await store.appendToStream(
      `s${i}`,
      Array.from({ length: 40 }, () => ev("Padding", { pad: "x".repeat(200) })),
      {
        kind: "k",
      },
    );
  }
  store.close();
  const bytes = Deno.readFileSync(path);
  Deno.writeFileSync(`${dir.path}/truncated.db`, bytes.slice(0, Math.floor(bytes.length / 3)));
  assert.throws(() => {
    const truncated = EventStore.open({ path: `${dir.path}/truncated.db`, readOnly: true });
    try {
      truncated.readAll(0, 1_000_000);
    } finally {
      truncated.close();
    }
  }, unavailable("malformed", /malformed/));
});

Deno.test("a database held exclusively by another connection is reported busy after the timeout", () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  EventStore.open({ path }).close();
  const holder = new DatabaseSync(path);
  holder.exec(
    "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; INSERT INTO streams (name, kind) VALUES ('x', 'k')",
  );
  try {
    assert.throws(
      () => EventStore.open({ path, readOnly: true, busyTimeoutMs: 100 }),
      (error: unknown) => error instanceof StoreUnavailableError && error.reason === "busy",
    );
  } finally {
    holder.exec("ROLLBACK");
    holder.close();
  }
});

Deno.test("an append waits for a write lock another connection holds without stalling the process", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  const busyTimeoutMs = 10_000;
  const store = EventStore.open({ path, busyTimeoutMs });
  const holder = new DatabaseSync(path);
  try {
    holder.exec("BEGIN IMMEDIATE");
    let released = false;
    const appended = store.appendToStream("a", [ev("One")], { kind: "k" });
    // Only this thread's own timers can release the lock: a writer asleep in SQLite's busy
    // wait would let them run only after its whole busy timeout, and then fail as busy.
    await new Promise<void>((resolve) => {
      let ticks = 0;
      const tick = () => {
        if (++ticks < 20) return void setTimeout(tick, 1);
        holder.exec("ROLLBACK");
        released = true;
        resolve();
      };
      setTimeout(tick, 1);
    });
    const result = await appended;
    assert.ok(released, "committed after this thread's timers freed the lock");
    assert.equal(result.nextVersion, 1);
    assert.deepEqual(store.readStream("a").map((e) => e.type), ["One"]);
  } finally {
    holder.close();
    store.close();
  }
});

Deno.test("appends fail as busy once the write lock stays taken past the timeout, and leave nothing behind", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  const store = EventStore.open({ path, busyTimeoutMs: 100 });
  const holder = new DatabaseSync(path);
  try {
    holder.exec("BEGIN IMMEDIATE");
    const results = await Promise.allSettled([
      store.appendToStream("a", [ev("One")], { kind: "k" }),
      store.appendToStream("b", [ev("Two")], { kind: "k" }),
    ]);
    for (const result of results) {
      assert.equal(result.status, "rejected");
      const error = (result as PromiseRejectedResult).reason;
      assert.ok(error instanceof StoreUnavailableError && error.reason === "busy", String(error));
      assert.match(error.message, /events\.db" is busy/);
    }
    holder.exec("ROLLBACK");
    assert.deepEqual(store.readStream("a"), []);
    // What the failed appends planned is forgotten: stream "a" starts again at version 1.
    const again = await store.appendToStream("a", [ev("One")], {
      kind: "k",
      expectedVersion: "no_stream",
    });
    assert.equal(again.nextVersion, 1);
    assert.equal(store.readAll(0, 10).length, 1);
  } finally {
    holder.close();
    store.close();
  }
});

Deno.test("a read-only store reads beside a writer and never writes", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  const writer = EventStore.open({ path });
  await writer.appendToStream("a", [ev("One")], { kind: "k" });
  const reader = EventStore.open({ path, readOnly: true });
  try {
    await writer.appendToStream("a", [ev("Two")]);
    assert.equal(reader.readStream("a").length, 2, "the reader sees the new commit");
    await assert.rejects(reader.appendToStream("a", [ev("Three")]), TypeError);
  } finally {
    reader.close();
    writer.close();
  }
});

Deno.test("a second writer's commits make the first refuse appends instead of corrupting the log", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  const first = EventStore.open({ path });
  await first.appendToStream("a", [ev("One")], { kind: "k" });
  const second = EventStore.open({ path });
  try {
    await second.appendToStream("b", [ev("One")], { kind: "k" });
    await assert.rejects(first.appendToStream("a", [ev("Two")]), (error: unknown) => {
      assert.equal((error as { code?: string }).code, "Aborted");
      assert.match(String(error), /Another process wrote/);
      return true;
    });
    // Having reloaded, the first writer goes on from the true state.
    const { events } = await first.appendToStream("a", [ev("Two")], { expectedVersion: 1 });
    assert.equal(events[0]!.seq, 3);
  } finally {
    second.close();
    first.close();
  }
});

Deno.test("checkpointPages spaces out checkpoints: pages stay in the WAL until the limit", async () => {
  using dir = tempDir();
  const grownBy = async (checkpointPages?: number) => {
    const path = `${dir.path}/events-${checkpointPages ?? "default"}.db`;
    const store = EventStore.open({ path, ...(checkpointPages ? { checkpointPages } : {}) });
    try {
      const before = Deno.statSync(path).size;
      // ~1,500 WAL pages: past SQLite's default checkpoint (1,000), short of 4,000.
      for (let i = 0; i < 500; i++) {
        await store.appendToStream(`s${i % 10}`, [ev("Padded", { pad: "x".repeat(3000) })], {
          kind: "k",
        });
      }
      return Deno.statSync(path).size - before;
    } finally {
      store.close();
    }
  };
  assert.ok(await grownBy() > 0, "the default checkpoint copied pages into the database");
  assert.equal(await grownBy(4000), 0, "with 4,000 pages nothing was checkpointed yet");
});

/** How many times the WAL has started over: its header's checkpoint sequence number. */
function walGeneration(path: string): number {
  const header = new Uint8Array(16);
  using file = Deno.openSync(`${path}-wal`, { read: true });
  file.readSync(header);
  return new DataView(header.buffer).getUint32(12);
}

Deno.test("a background checkpointer copies the WAL off the writer; an idle moment starts it over", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  // The forced restart is out of reach here: only the writer's own restart can act.
  const store = EventStore.open({
    path,
    backgroundCheckpoint: { intervalMs: 20, restartPages: Infinity },
  });
  try {
    // ~3,000 pages in bursts; the writer checkpoints itself only past 2 × restartPages.
    for (let round = 0; round < 30; round++) {
      await Promise.all(
        Array.from(
          { length: 100 },
          (_, i) =>
            store.appendToStream(`s${i}`, [ev("Padded", { pad: "x".repeat(3000) })], { kind: "k" }),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const before = walGeneration(path);
    let generation = before;
    for (let i = 0; i < 40 && generation === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      // A write after a complete checkpoint starts the WAL over.
      await store.appendToStream("tick", [ev("Tick")], { kind: "k" });
      generation = walGeneration(path);
    }
    assert.ok(generation > before, "the WAL started over");
    assert.ok(Deno.statSync(path).size > 3000 * 3000, "the pages were copied into the database");
    assert.equal(store.readAll(0, 10_000).length, 3000 + store.readStream("tick").length);
  } finally {
    store.close(); // stops the worker: a leaked worker would fail the test's sanitizer
  }
});

Deno.test("under steady writes the checkpointer forces the WAL over once it passes restartPages", async () => {
  using dir = tempDir();
  const grownTo = async (restartPages: number) => {
    const path = `${dir.path}/events-${restartPages}.db`;
    const store = EventStore.open({ path, backgroundCheckpoint: { intervalMs: 20, restartPages } });
    try {
      // ~4,000 pages, ten appends in flight at all times: the WAL is never fully copied
      // between two commits, so the writer never starts it over by itself.
      let next = 0;
      const writer = async () => {
        while (next < 4000) {
          const i = next++;
          await store.appendToStream(`s${i % 10}`, [ev("Padded", { pad: "x".repeat(3000) })], {
            kind: "k",
          });
        }
      };
      await Promise.all(Array.from({ length: 10 }, writer));
      assert.equal(store.readAll(0, 10_000).length, 4000);
      return Deno.statSync(`${path}-wal`).size;
    } finally {
      store.close();
    }
  };
  const forced = await grownTo(256);
  const unforced = await grownTo(Infinity);
  assert.ok(forced < 8 * 1024 * 1024, `with restarts at 256 pages the WAL grew to ${forced} bytes`);
  assert.ok(unforced > 3 * forced, `without them it grew to ${unforced} bytes, not much more`);
});
