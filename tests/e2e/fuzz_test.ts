import assert from "node:assert/strict";
import { runFuzz } from "../../fuzz/run.ts";
import { tempDir } from "../_support/temp_dir.ts";

Deno.test("fuzzed CRI requests (the short form of deno task fuzz): every call answered in time, no crash, the log verifies, memory back to its baseline", async () => {
  using dir = tempDir("pve-cri-fuzz-");
  const summary = await runFuzz({
    calls: 3_000,
    seed: 20261206,
    maxSeconds: 300,
    connections: 4,
    dir: dir.path,
  });
  assert.equal(summary.crashes, 0, JSON.stringify(summary));
  assert.equal(summary.hangs, 0, JSON.stringify(summary));
  assert.equal(summary.verify, "clean");
  assert.equal(summary.calls, 3_000);
  // Memory measured after removing what the calls made and a full collection, both times.
  assert.ok(
    summary.rssReturned,
    `RSS within 20% of its baseline: ${JSON.stringify(summary.rssKb)}`,
  );
  assert.ok(
    summary.heapReturned,
    `heap within 10% of its baseline: ${JSON.stringify(summary.heapKb)}`,
  );
  // The requests were bad in many ways: answered OK and with several error codes.
  const codes = Object.keys(summary.statuses);
  assert.ok(codes.includes("0"), `some calls succeeded: ${codes}`);
  for (const code of ["3", "13"]) assert.ok(codes.includes(code), `${code} among ${codes}`);
});
