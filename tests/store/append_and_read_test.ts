import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  EventStore,
  ExpectedVersionConflictError,
  type RecordedEvent,
  StreamClosedError,
} from "../../store/mod.ts";
import { tempDir } from "../_support/temp_dir.ts";

const ev = (type: string, data: unknown = {}) => ({ type, typeVersion: 1, data });

Deno.test("appended events read back in stream order and in commit order", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db` });
  try {
    await store.appendToStream("a", [ev("One", { n: 1 }), ev("Two", { n: 2 })], { kind: "k" });
    await store.appendToStream("b", [ev("One", { n: 3 })], {
      kind: "k",
      expectedVersion: "no_stream",
    });
    await store.appendToStream("a", [ev("Three")], { expectedVersion: 2 });

    const a = store.readStream("a");
    assert.deepEqual(a.map((e) => [e.version, e.type, e.seq]), [[1, "One", 1], [2, "Two", 2], [
      3,
      "Three",
      4,
    ]]);
    assert.deepEqual(a[0]!.data, { n: 1 });
    assert.equal(a[0]!.kind, "k");
    assert.deepEqual(store.readStream("a", 3).map((e) => e.type), ["Three"]);
    assert.deepEqual(store.readStream("nothing"), []);

    const all = store.readAll(0, 10);
    assert.deepEqual(all.map((e) => `${e.stream}:${e.version}`), ["a:1", "a:2", "b:1", "a:3"]);
    assert.deepEqual(store.readAll(2, 1).map((e) => e.seq), [3]);

    const info = store.streamInfo("a")!;
    assert.equal(info.version, 3);
    assert.equal(info.closed, false);
    assert.deepEqual(store.listStreams().map((s) => s.stream), ["a", "b"]);
  } finally {
    store.close();
  }
});

Deno.test("a wrong expected version is a typed conflict and appends nothing", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db` });
  try {
    await store.appendToStream("a", [ev("One")], { kind: "k" });
    await assert.rejects(
      store.appendToStream("a", [ev("Two")], { expectedVersion: 0 }),
      (error: unknown) => {
        assert.ok(error instanceof ExpectedVersionConflictError);
        assert.equal(error.code, "Aborted");
        assert.equal(error.actual, 1);
        assert.match(error.message, /Stream "a" is at version 1, expected 0/);
        return true;
      },
    );
    await assert.rejects(
      store.appendToStream("a", [ev("Two")], { expectedVersion: "no_stream" }),
      ExpectedVersionConflictError,
    );
    await assert.rejects(
      store.appendToStream("zz", [ev("Two")], { kind: "k", expectedVersion: "stream_exists" }),
      ExpectedVersionConflictError,
    );
    assert.equal(store.readStream("a").length, 1);
    assert.equal(store.readStream("zz").length, 0);
    // The refused append left no gap: the next one gets the next seq and version.
    const { events } = await store.appendToStream("a", [ev("Two")], { expectedVersion: 1 });
    assert.deepEqual([events[0]!.seq, events[0]!.version], [2, 2]);
  } finally {
    store.close();
  }
});

Deno.test("appending to a closed stream fails with StreamClosedError", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db` });
  try {
    await store.appendToStream("a", [ev("One"), ev("Removed")], { kind: "k", close: true });
    await assert.rejects(store.appendToStream("a", [ev("Again")]), (error: unknown) => {
      assert.ok(error instanceof StreamClosedError);
      assert.equal(error.code, "FailedPrecondition");
      return true;
    });
    assert.equal(store.streamInfo("a")!.closed, true);
  } finally {
    store.close();
  }
  // Closed stays closed across a reopen.
  const reopened = EventStore.open({ path: `${dir.path}/events.db` });
  try {
    await assert.rejects(reopened.appendToStream("a", [ev("Again")]), StreamClosedError);
  } finally {
    reopened.close();
  }
});

Deno.test("the writer forgets closed streams: memory follows the open ones, not all ever written", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db` });
  try {
    await store.appendToStream("kept", [ev("One")], { kind: "k" });
    await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) =>
          store.appendToStream(`gone-${i}`, [ev("One"), ev("Removed")], { kind: "k", close: true }),
      ),
    );
    await store.appendToStream("closed-later", [ev("One")], { kind: "k" });
    assert.equal(store.cachedStreams, 2);
    await store.appendToStream("closed-later", [ev("Removed")], { close: true });
    assert.equal(store.cachedStreams, 1);
    // What was forgotten is read back when asked: still closed, at its version.
    await assert.rejects(store.appendToStream("gone-7", [ev("Again")]), StreamClosedError);
    await assert.rejects(store.appendToStream("closed-later", [ev("Again")]), StreamClosedError);
    assert.deepEqual(
      [store.streamInfo("gone-7")!.version, store.streamInfo("closed-later")!.version],
      [2, 2],
    );
    const { events } = await store.appendToStream("kept", [ev("Two")], { expectedVersion: 1 });
    assert.equal(events[0]!.version, 2);
  } finally {
    store.close();
  }
});

Deno.test("bad appends are refused with typed errors, not accepted", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db` });
  try {
    await assert.rejects(store.appendToStream("a", [ev("One")]), /its kind is required/);
    await assert.rejects(store.appendToStream("a", [], { kind: "k" }), RangeError);
    await assert.rejects(
      store.appendToStream("a", [{ type: "", typeVersion: 1, data: {} }], { kind: "k" }),
      TypeError,
    );
    await assert.rejects(
      store.appendToStream("a", [{ type: "X", typeVersion: 1, data: { n: 1n } }], { kind: "k" }),
      TypeError,
    );
    await store.appendToStream("a", [ev("One")], { kind: "k" });
    await assert.rejects(
      store.appendToStream("a", [ev("Two")], { kind: "other" }),
      /is a k, not a other/,
    );
    assert.equal(store.lastSeq, 1);
  } finally {
    store.close();
  }
});

Deno.test("a multi-stream append is all or nothing", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db` });
  try {
    await store.appendToStream("owner", [ev("Created")], { kind: "k" });
    await assert.rejects(
      store.appendToStreams([
        { stream: "owner", events: [ev("ChildAdded")], options: { expectedVersion: 1 } },
        { stream: "child", events: [ev("Created")], options: { kind: "k", expectedVersion: 5 } },
      ]),
      ExpectedVersionConflictError,
    );
    assert.equal(store.readStream("owner").length, 1);
    const results = await store.appendToStreams([
      { stream: "owner", events: [ev("ChildAdded")], options: { expectedVersion: 1 } },
      {
        stream: "child",
        events: [ev("Created")],
        options: { kind: "k", expectedVersion: "no_stream" },
      },
    ]);
    assert.deepEqual(results.map((r) => r.events[0]!.seq), [2, 3]);
  } finally {
    store.close();
  }
});

Deno.test("concurrent appends commit together and each resolves only once committed", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  const store = EventStore.open({ path });
  const reader = new DatabaseSync(path, { readOnly: true });
  try {
    const committedWhenResolved: number[] = [];
    await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) =>
          store.appendToStream(`s${i}`, [ev("One", { i })], { kind: "k" }).then((r) => {
            // Another connection must already see it: it is committed, not just queued.
            const row = reader.prepare("SELECT count(*) AS n FROM events WHERE seq = ?").get(
              r.events[0]!.seq,
            ) as { n: number };
            committedWhenResolved.push(row.n);
          }),
      ),
    );
    assert.equal(committedWhenResolved.length, 200);
    assert.ok(committedWhenResolved.every((n) => n === 1));
    assert.equal(store.readAll(0, 1000).length, 200);
  } finally {
    reader.close();
    store.close();
  }
});

Deno.test("subscribers see committed events in commit order, never refused ones", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db` });
  const seen: RecordedEvent[] = [];
  const unsubscribe = store.subscribe((events) => seen.push(...events));
  try {
    await store.appendToStream("a", [ev("One")], { kind: "k" });
    await Promise.all([
      store.appendToStream("b", [ev("Two")], { kind: "k" }),
      store.appendToStream("a", [ev("Bad")], { expectedVersion: 7 }).catch(() => {}),
      store.appendToStream("a", [ev("Three")], { expectedVersion: 1 }),
    ]);
    unsubscribe();
    await store.appendToStream("a", [ev("Unseen")]);
    assert.deepEqual(seen.map((e) => e.type), ["One", "Two", "Three"]);
    assert.deepEqual(seen.map((e) => e.seq), [1, 2, 3]);
  } finally {
    store.close();
  }
});

Deno.test("the database and its WAL files are readable by the owner only", async () => {
  using dir = tempDir();
  const path = `${dir.path}/state/events.db`;
  const store = EventStore.open({ path });
  try {
    await store.appendToStream("a", [ev("One")], { kind: "k" });
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      assert.equal(Deno.statSync(file).mode! & 0o777, 0o600, file);
    }
    assert.equal(Deno.statSync(`${dir.path}/state`).mode! & 0o777, 0o700);
  } finally {
    store.close();
  }
});

Deno.test("an upcaster turns old payloads into today's shape on every read", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  const upcast = (
    { type, typeVersion, data }: { type: string; typeVersion: number; data: unknown },
  ) =>
    type === "Named" && typeVersion === 1
      ? { typeVersion: 2, data: { name: { first: (data as { name: string }).name } } }
      : { typeVersion, data };
  const store = EventStore.open({ path, upcast });
  try {
    await store.appendToStream("a", [{ type: "Named", typeVersion: 1, data: { name: "x" } }], {
      kind: "k",
    });
    const [event] = store.readStream("a");
    assert.equal(event!.typeVersion, 2);
    assert.deepEqual(event!.data, { name: { first: "x" } });
    assert.deepEqual(store.readAll()[0]!.data, { name: { first: "x" } });
  } finally {
    store.close();
  }
});
