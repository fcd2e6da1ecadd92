import assert from "node:assert/strict";
import { EventStore, ProjectionKeyConflictError, type Projector } from "../../store/mod.ts";
import { tempDir } from "../_support/temp_dir.ts";

interface Doc {
  name: string;
  count: number;
}

/** Counts events per stream; reserves the stream's name until a Released event. */
const counter: Projector<Doc> = {
  name: "counter",
  revision: 1,
  kinds: ["thing"],
  evolve(current, events) {
    let doc = current?.doc ?? { name: "", count: 0 };
    let key = current?.key ?? null;
    for (const event of events) {
      const data = event.data as { name?: string };
      if (event.type === "Named") {
        doc = { ...doc, name: data.name! };
        key = data.name!;
      }
      if (event.type === "Released") key = null;
      if (event.type === "Dropped") return null;
      doc = { ...doc, count: doc.count + 1 };
    }
    return { key, doc };
  },
};

const ev = (type: string, data: unknown = {}) => ({ type, typeVersion: 1, data });

Deno.test("projections follow every append inside its transaction", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db`, projectors: [counter] });
  try {
    await store.appendToStream("t1", [ev("Named", { name: "alpha" }), ev("Poked")], {
      kind: "thing",
    });
    await store.appendToStream("o1", [ev("Poked")], { kind: "other" });
    assert.deepEqual(store.getProjection<Doc>("counter", "t1"), {
      stream: "t1",
      key: "alpha",
      version: 2,
      summary: null,
      doc: { name: "alpha", count: 2 },
    });
    assert.equal(store.getProjection("counter", "o1"), undefined, "other kinds are not followed");
    assert.equal(store.findByKey<Doc>("counter", "alpha")!.stream, "t1");
    await store.appendToStream("t1", [ev("Dropped")]);
    assert.equal(store.getProjection("counter", "t1"), undefined);
    assert.equal(store.findByKey("counter", "alpha"), undefined);
  } finally {
    store.close();
  }
});

Deno.test("a unique key held by another stream refuses the append and names the holder", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db`, projectors: [counter] });
  try {
    await store.appendToStream("t1", [ev("Named", { name: "alpha" })], { kind: "thing" });
    await assert.rejects(
      store.appendToStream("t2", [ev("Named", { name: "alpha" })], { kind: "thing" }),
      (error: unknown) => {
        assert.ok(error instanceof ProjectionKeyConflictError);
        assert.equal(error.code, "AlreadyExists");
        assert.equal(error.holder, "t1");
        return true;
      },
    );
    assert.equal(store.streamInfo("t2"), undefined, "the refused stream was not created");
    // Released in one append and claimed in the same tick by another stream: one batch.
    await Promise.all([
      store.appendToStream("t1", [ev("Released")]),
      store.appendToStream("t2", [ev("Named", { name: "alpha" })], { kind: "thing" }),
    ]);
    assert.equal(store.findByKey("counter", "alpha")!.stream, "t2");
    assert.equal(store.getProjection("counter", "t1")!.key, null);
  } finally {
    store.close();
  }
});

Deno.test("two appends in one tick cannot both take a free key", async () => {
  using dir = tempDir();
  const store = EventStore.open({ path: `${dir.path}/events.db`, projectors: [counter] });
  try {
    const results = await Promise.allSettled([
      store.appendToStream("t1", [ev("Named", { name: "beta" })], { kind: "thing" }),
      store.appendToStream("t2", [ev("Named", { name: "beta" })], { kind: "thing" }),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected"]);
  } finally {
    store.close();
  }
});

Deno.test("a changed projector revision rebuilds the projection from the log", async () => {
  using dir = tempDir();
  const path = `${dir.path}/events.db`;
  const first = EventStore.open({ path, projectors: [counter] });
  await first.appendToStream("t1", [ev("Named", { name: "a" }), ev("Poked")], { kind: "thing" });
  await first.appendToStream("t2", [ev("Named", { name: "b" })], { kind: "thing" });
  first.close();

  const doubled: Projector<Doc> = {
    ...counter,
    revision: 2,
    evolve(current, events) {
      const next = counter.evolve(current, events);
      return next &&
        {
          key: next.key,
          doc: { ...next.doc, count: (current?.doc.count ?? 0) + 2 * events.length },
        };
    },
  };
  const second = EventStore.open({ path, projectors: [doubled] });
  try {
    assert.equal(second.getProjection<Doc>("counter", "t1")!.doc.count, 4);
    assert.equal(second.getProjection<Doc>("counter", "t2")!.doc.count, 2);
    assert.equal(second.findByKey("counter", "b")!.stream, "t2");
    assert.deepEqual(second.listProjection("counter").map((r) => r.stream), ["t1", "t2"]);
  } finally {
    second.close();
  }
});
