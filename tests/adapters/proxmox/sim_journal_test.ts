import assert from "node:assert/strict";
import { Journal, LazyEntries } from "../../../adapters/proxmox/sim/journal.ts";
import { TaskManager } from "../../../adapters/proxmox/sim/tasks.ts";
import { silentLogger } from "../../../lib/log.ts";
import { tempDir } from "../../_support/temp_dir.ts";

Deno.test("A journal line torn by a crash is cut off, and the next entry gets a line of its own", () => {
  using dir = tempDir("pve-cri-journal-");
  const path = `${dir.path}/j.jsonl`;
  const first = new Journal<{ n: number }>(path);
  first.append({ n: 1 });
  first.append({ n: 2 });
  first.close();
  Deno.writeTextFileSync(path, '{"n":3,"pad":"é', { append: true }); // killed mid-write
  const second = new Journal<{ n: number }>(path);
  assert.deepEqual(second.read(), [{ n: 1 }, { n: 2 }]);
  second.append({ n: 4 });
  second.close();
  assert.equal(Deno.readTextFileSync(path), '{"n":1}\n{"n":2}\n{"n":4}\n');
  assert.deepEqual(new Journal<{ n: number }>(path).read(), [{ n: 1 }, { n: 2 }, { n: 4 }]);
});

Deno.test("Tasks read back after a restart keep their status and log, list in order, and get new pids", async () => {
  using dir = tempDir("pve-cri-tasks-");
  const options = { node: "pve1", dir: dir.path, logger: silentLogger, now: Date.now };
  const before = new TaskManager(options);
  const done = before.spawn({
    type: "vzcreate",
    id: "100",
    user: "root@pam",
    work: (context) => Promise.resolve(context.log("extracting archive")),
  });
  const failed = before.spawn({
    type: "vzstart",
    id: "100",
    user: "root@pam",
    work: () => Promise.reject(new Error("startup for container '100' failed")),
  });
  await before.idle();
  before.close();
  Deno.writeTextFileSync(`${dir.path}/tasks.jsonl`, "not json\n", { append: true });

  const after = new TaskManager(options);
  assert.deepEqual(after.get(done)?.log, ["extracting archive", "TASK OK"]);
  assert.equal(after.get(done)?.status, "stopped");
  assert.equal(after.get(failed)?.exitstatus, "startup for container '100' failed");
  assert.deepEqual(after.list({ vmid: 100 }).map((t) => t.upid).sort(), [done, failed].sort());
  assert.deepEqual(after.list({ errors: true }).map((t) => t.upid), [failed]);
  const next = after.spawn({ type: "vzstop", id: "100", user: "root@pam", work: async () => {} });
  const pids = [done, failed].map((upid) => after.get(upid)!.pid);
  assert.ok(after.get(next)!.pid > Math.max(...pids), "a new task never reuses a pid");
  await after.idle();
  after.close();
});

Deno.test("A full task journal starts over: finished tasks stay listed from the previous generation, running ones resume", async () => {
  using dir = tempDir("pve-cri-tasks-");
  const options = {
    node: "pve1",
    dir: dir.path,
    logger: silentLogger,
    now: Date.now,
    generationLines: 4,
  };
  const before = new TaskManager(options);
  const quick = (id: string) =>
    before.spawn({ type: "vzstart", id, user: "root@pam", work: async () => {} });
  const first = quick("100");
  await before.idle();
  const second = quick("101");
  await before.idle();
  // The fifth line: the journal starts over while this one runs.
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  const slow = before.spawn({ type: "vzstop", id: "102", user: "root@pam", work: () => held });
  assert.equal(Deno.readTextFileSync(`${dir.path}/tasks.jsonl`).trim().split("\n").length, 1);
  before.abandon(); // killed while it runs
  release();
  await before.idle();
  before.close();

  const after = new TaskManager(options);
  const resumed: string[] = [];
  after.resumeInterrupted((record) => {
    resumed.push(record.upid);
    return async () => {};
  });
  await after.idle();
  assert.deepEqual(resumed, [slow]);
  assert.equal(after.get(first)?.exitstatus, "OK");
  assert.equal(after.get(slow)?.exitstatus, "OK");
  assert.deepEqual(after.list({}).map((t) => t.upid).sort(), [first, second, slow].sort());
  after.close();
});

Deno.test("LazyEntries: the last line of a key wins, a removal drops it, a damaged line is as if never written", () => {
  const lines = [
    '{"id":"a","n":1}',
    '{"id":"b","n":2}',
    '{"id":"a","n":3}',
    '{"id":"c","n":4}',
    '{"id":"c","gone":true}',
    '{"id":"d","n":',
  ];
  let parsed = 0;
  const entries = new LazyEntries<string, { n: number }>({
    lines,
    keyOf: (line) => /^\{"id":"(\w+)"/.exec(line)?.[1],
    removes: (line) => line.includes('"gone":true'),
    parse: (line) => {
      parsed++;
      return JSON.parse(line);
    },
  });
  assert.equal(parsed, 0, "nothing parsed until asked for");
  assert.deepEqual(entries.keysWhereLineHas('"n":2'), ["b"], "found without parsing");
  assert.equal(parsed, 0);
  assert.deepEqual([entries.has("a"), entries.has("c"), entries.has("d")], [true, false, true]);
  assert.equal(entries.get("a")?.n, 3);
  assert.equal(entries.get("d"), undefined);
  assert.equal(entries.has("d"), false, "dropped once found damaged");
  assert.deepEqual([...entries.entries()].map(([key, { n }]) => [key, n]), [["a", 3], ["b", 2]]);
});
