/**
 * An unreadable row (an event, or a stream's projection) sets that one stream aside: it is
 * reported (replay, the drift report, the log), its CT is never taken for an orphan, and
 * every other stream recovers and works.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { FakeNode } from "../../adapters/node/fake_node.ts";
import { runReplay } from "../../cli/replay.ts";
import { Logger, silentLogger } from "../../lib/log.ts";
import { databasePath } from "../../lib/paths.ts";
import { openRuntime } from "../../runtime/open_runtime.ts";
import { Reconciler } from "../../runtime/reconciler.ts";
import { containerSpec, sandboxSpec } from "../_support/specs.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { testImageName, writeArchive } from "../_support/test_image.ts";

const call = { meta: { method: "test" } };

Deno.test("an unreadable event or projection row quarantines its stream alone: reported, its CT kept, the rest recovers", async () => {
  using dir = tempDir();
  const stateDir = `${dir.path}/state`;
  const lines: string[] = [];
  const open = () =>
    openRuntime({
      stateDir,
      backend: "memory",
      log: new Logger("info", {}, { write: (line) => void lines.push(line) }),
      version: "test",
    });
  let rt = await open();
  await rt.runtime.importImage(writeArchive(dir.path), call, { name: testImageName });
  const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
  const badEvent = await rt.runtime.createContainer(pod.id, containerSpec("bad-event"), call);
  const badRow = await rt.runtime.createContainer(pod.id, containerSpec("bad-row"), call);
  const good = await rt.runtime.createContainer(pod.id, containerSpec("good"), call);
  await rt.runtime.startContainer(good.id, call);
  await rt.close();

  const edit = (sql: string, ...params: string[]) => {
    const db = new DatabaseSync(databasePath(stateDir));
    db.prepare(sql).run(...params);
    db.close();
  };
  const streamOf = "(SELECT id FROM streams WHERE name = ?)";
  // An event row hand-edited into garbage, found when an upgrade rebuilds the projections.
  edit(
    `UPDATE events SET data = '{not json' WHERE stream_id = ${streamOf} AND version = 2`,
    badEvent.id,
  );
  edit("DELETE FROM projection_revisions");
  rt = await open();
  await rt.close();
  // A projection row that cannot be read, found when streams are loaded.
  edit(`UPDATE projections SET summary = '{"sta' WHERE stream_id = ${streamOf}`, badRow.id);

  rt = await open();
  try {
    const quarantined = rt.store.quarantined();
    assert.deepEqual(quarantined.map((q) => [q.stream, q.kind, q.seq === null]), [
      [badEvent.id, "container", false],
      [badRow.id, "container", true],
    ]);
    assert.match(quarantined[0]!.reason, /data is not JSON/);
    assert.match(quarantined[1]!.reason, /not JSON/);
    assert.ok(
      lines.filter((l) => l.includes("stream quarantined")).length >= 2,
      "each quarantine is logged",
    );

    // Every other stream recovered and works.
    assert.deepEqual(rt.runtime.containers().map((c) => c.id), [good.id]);
    assert.equal(rt.runtime.container(badEvent.id), undefined);
    assert.equal(rt.runtime.sandbox(pod.id)?.state, "SANDBOX_READY");
    await rt.runtime.stopContainer(good.id, 0, call);
    const more = await rt.runtime.createContainer(pod.id, containerSpec("more"), call);
    await rt.runtime.startContainer(more.id, call);
    assert.equal(rt.runtime.container(more.id)?.state, "CONTAINER_RUNNING");

    // Reported, and their CTs are not taken for orphans, even past the grace period.
    const reconciler = new Reconciler({
      api: rt.api,
      registry: rt.registry,
      node: new FakeNode(),
      log: silentLogger,
      orphanGraceMs: 0,
    });
    const drift = await reconciler.run({ repair: true });
    assert.deepEqual(
      drift.filter((d) => d.kind === "quarantined stream").map((d) => d.subject),
      [badEvent.id, badRow.id],
    );
    for (const c of [badEvent, badRow]) {
      assert.equal((await rt.api.ctStatus({ vmid: c.vmid! })).status, "stopped", "CT kept");
      assert.match(
        drift.find((d) => d.subject === String(c.vmid))!.detail,
        /quarantined stream .*left alone/,
      );
    }
  } finally {
    await rt.close();
  }

  const out: string[] = [];
  const output = {
    line: (text: string) => void out.push(text),
    error: (text: string) => void out.push(text),
  };
  assert.equal(runReplay(["--state-dir", stateDir], output), 0);
  assert.ok(out.some((l) => l.startsWith(`! quarantined container ${badRow.id}`)), out.join("\n"));
  out.length = 0;
  assert.equal(runReplay(["--state-dir", stateDir, "--verify"], output), 1);
  const expected: [string, RegExp][] = [[badEvent.id, /Corrupt event/], [badRow.id, /quarantined/]];
  const rows = out.join("\n").split("\n");
  for (const [id, problem] of expected) {
    assert.ok(rows.some((l) => l.startsWith(id.slice(0, 13)) && problem.test(l)), rows.join("\n"));
  }
});
