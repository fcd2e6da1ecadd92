import assert from "node:assert/strict";
import { ContentStore } from "../../../adapters/oci/content_store.ts";
import { digestOf } from "../../_support/oci_images.ts";
import { tempDir } from "../../_support/temp_dir.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

async function* chunks(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield typeof part === "string" ? bytes(part) : part;
}

function leftovers(store: ContentStore): string[] {
  return [...Deno.readDirSync(`${store.dir}/ingest`)].map((e) => e.name);
}

Deno.test("a blob is stored under its digest once its bytes match it, and is not fetched again", async () => {
  using dir = tempDir();
  const store = ContentStore.open(dir.path);
  const data = bytes("layer data ".repeat(1000));
  const blob = { digest: digestOf(data), size: data.length };
  let opened = 0;
  const open = () => {
    opened++;
    return chunks(data.subarray(0, 100), data.subarray(100));
  };
  const seen: number[] = [];
  await store.ingest(blob, open, { onProgress: (done) => seen.push(done) });
  assert.equal(opened, 1);
  assert.equal(seen.at(-1), data.length, "progress ends at the blob's size");
  assert.ok(store.has(blob.digest, blob.size));
  assert.deepEqual(Deno.readFileSync(store.path(blob.digest)), data);
  await store.ingest(blob, open);
  assert.equal(opened, 1, "a stored blob is not fetched again");
  assert.deepEqual(store.list(), [blob.digest]);
});

Deno.test("bytes that do not match the digest, or the size, leave nothing stored", async () => {
  using dir = tempDir();
  const store = ContentStore.open(dir.path);
  const expected = { digest: digestOf(bytes("right")), size: 5 };
  await assert.rejects(
    store.ingest(expected, () => chunks("wrong"), { where: "layer 1 of app:v1" }),
    (error: Error & { code?: string }) =>
      error.code === "DataLoss" &&
      /^layer 1 of app:v1: content does not match its digest: expected sha256:/.test(error.message),
  );
  await assert.rejects(
    store.ingest(expected, () => chunks("right", "and more")),
    /more data than the 5 bytes its descriptor says/,
  );
  await assert.rejects(
    store.ingest(expected, () => chunks("rig")),
    /3 bytes where its descriptor says 5/,
  );
  assert.equal(store.has(expected.digest), false);
  assert.deepEqual(leftovers(store), []);
  assert.deepEqual(store.list(), []);
});

Deno.test("a fetch cancelled midway leaves no partial file; two fetches of one blob share one download", async () => {
  using dir = tempDir();
  const store = ContentStore.open(dir.path);
  const data = new Uint8Array(64 * 1024).fill(7);
  const blob = { digest: digestOf(data), size: data.length };
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  let opened = 0;
  const slow = async function* () {
    opened++;
    yield data.subarray(0, 1024);
    await gate;
    yield data.subarray(1024);
  };
  const caller = new AbortController();
  const cancelled = store.ingest(blob, slow, { signal: caller.signal });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(leftovers(store).length, 1, "the partial file exists while the fetch runs");
  caller.abort(new Error("caller gave up"));
  await assert.rejects(cancelled, /caller gave up/);
  release();
  // The work stops at its next chunk and removes its file.
  for (let i = 0; i < 100 && leftovers(store).length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.deepEqual(leftovers(store), []);
  assert.equal(store.has(blob.digest), false);

  let releaseShared!: () => void;
  const shared = new Promise<void>((resolve) => releaseShared = resolve);
  const once = async function* () {
    opened++;
    await shared;
    yield data;
  };
  const first = store.ingest(blob, once);
  const second = store.ingest(blob, once);
  releaseShared();
  await Promise.all([first, second]);
  assert.equal(opened, 2, "one download for both callers (after the cancelled one)");
  assert.ok(store.has(blob.digest, blob.size));
});

Deno.test("a store opened again clears what a dead process left in ingest; usage counts blocks and inodes", async () => {
  using dir = tempDir();
  const store = ContentStore.open(dir.path);
  Deno.writeTextFileSync(`${dir.path}/ingest/abc.123.part`, "half a layer");
  const data = bytes("x".repeat(10_000));
  await store.put({ digest: digestOf(data), size: data.length }, data);
  const reopened = ContentStore.open(dir.path);
  assert.deepEqual(leftovers(reopened), []);
  const usage = reopened.usage();
  assert.ok(usage.bytes >= data.length, `${usage.bytes} bytes`);
  // blobs, blobs/sha256, the blob, ingest
  assert.equal(usage.inodes, 4);
});

Deno.test("a blob read while it comes in follows the writer, and fails if it turns out not to match", async () => {
  using dir = tempDir();
  const store = ContentStore.open(dir.path);
  const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
  const blob = { digest: digestOf(data), size: data.length };
  const gates = [0, 1, 2].map(() => Promise.withResolvers<void>());
  const arriving = async function* () {
    for (let i = 0; i < 3; i++) {
      await gates[i]!.promise;
      yield data.subarray(i << 20, (i + 1) << 20);
    }
  };
  // The reader starts before the fetch does: it waits for it.
  const read = (async () => {
    const parts: Uint8Array[] = [];
    for await (const chunk of store.stream(blob)) parts.push(chunk);
    return parts;
  })();
  await new Promise((resolve) => setTimeout(resolve, 10));
  const stored = store.ingest(blob, arriving);
  for (const gate of gates) {
    gate.resolve();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await stored;
  const parts = await read;
  assert.ok(parts.length >= 3, "read as it arrived, not at the end");
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  assert.deepEqual(joined, data);

  const lie = { digest: digestOf(bytes("promised")), size: data.length };
  const following = (async () => {
    for await (const _ of store.stream(lie)) { /* reads what arrives */ }
  })().then(() => undefined, (error: Error) => error);
  await assert.rejects(store.ingest(lie, () => chunks(data)), /does not match its digest/);
  assert.match(String((await following)?.message), /was not stored: .*does not match its digest/);
  const aborted = new AbortController();
  const waiting = (async () => {
    for await (
      const _ of store.stream({ digest: digestOf(bytes("never")), size: 5 }, aborted.signal)
    ) {
      // never comes
    }
  })();
  aborted.abort(new Error("state left"));
  await assert.rejects(waiting, /state left/);
});
