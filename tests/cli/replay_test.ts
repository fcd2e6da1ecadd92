import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { bufferOutput } from "../../cli/output.ts";
import { runReplay } from "../../cli/replay.ts";
import {
  createContainer,
  removePodSandbox,
  runPodSandbox,
  startContainer,
} from "../../machines/commands.ts";
import { databasePath } from "../../lib/paths.ts";
import { latestSchemaVersion, migrate } from "../../store/mod.ts";
import { openKernel, testContainer, testPod } from "../_support/runtime.ts";
import { tempDir } from "../_support/temp_dir.ts";

/** A state dir with a running pod (one container) and a removed pod. */
async function populated(stateDir: string) {
  using rt = openKernel(databasePath(stateDir));
  const web = testPod("web");
  await runPodSandbox(rt.registry, web, { meta: { method: "RunPodSandbox", requestId: "r1" } });
  const app = testContainer(web.id, "app");
  await createContainer(rt.registry, app);
  await startContainer(rt.registry, app.id);
  const gone = testPod("gone", 0);
  await runPodSandbox(rt.registry, gone);
  await removePodSandbox(rt.registry, gone.id);
  await rt.registry.whenIdle();
  return { web, app, gone };
}

function replay(...args: string[]) {
  const out = bufferOutput();
  const status = runReplay(args, out);
  return { status, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n") };
}

Deno.test("replay lists every stream with kind, name, state and its last event, named and timed", async () => {
  using dir = tempDir();
  const { web, app, gone } = await populated(dir.path);
  const { status, stdout } = replay("--state-dir", dir.path);
  assert.equal(status, 0);
  assert.match(stdout, /^STREAM\s+KIND\s+NAME\s+STATE\s+VERSION\s+LAST EVENT\s+AT/);
  const row = (id: string, rest: string) =>
    new RegExp(`${id.slice(0, 13)}\\s+${rest}\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z`);
  assert.match(stdout, row(web.id, "sandbox\\s+default/web\\s+ready\\s+\\d+\\s+ContainerAdmitted"));
  assert.match(stdout, row(app.id, "container\\s+app\\s+running\\s+\\d+\\s+ContainerStarted"));
  assert.match(
    stdout,
    row(gone.id, "sandbox\\s+default/gone\\s+removed\\s+\\d+\\s+ContainersRemoved"),
  );
  assert.match(stdout, /3 streams, \d+ events/);

  const json = JSON.parse(replay("--state-dir", dir.path, "--json").stdout);
  assert.deepEqual(
    json.streams.map((s: { stream: string; state: string }) => [s.stream, s.state]),
    [[web.id, "ready"], [app.id, "running"], [gone.id, "removed"]],
  );
});

Deno.test("replay ID-PREFIX prints the timeline with the state after each event, secrets redacted", async () => {
  using dir = tempDir();
  const { app } = await populated(dir.path);
  const { status, stdout } = replay(app.id.slice(0, 6), "--state-dir", dir.path);
  assert.equal(status, 0);
  const rows = stdout.split("\n").slice(2).map((line) => line.split(/\s{2,}/));
  assert.deepEqual(rows.map((r) => [r[3], r[4]]), [
    ["ContainerRequested", "resolvingImage"],
    ["ImageResolved", "allocatingVmid"],
    ["VmidAllocated", "creatingCt"],
    ["PveTaskStarted", "creatingCt"],
    ["CtCreated", "configuringCt"],
    ["CtConfigured", "created"],
    ["ContainerStartRequested", "startingCt"],
    ["PveTaskStarted", "startingCt"],
    ["ContainerStarted", "running"],
  ]);
  // Each line says what its event carried.
  const detail = (type: string) => rows.find((r) => r[3] === type)?.[5] ?? "";
  assert.match(detail("VmidAllocated"), /^vmid=\d+$/);
  assert.match(detail("PveTaskStarted"), /^upid=UPID:\S+ operation=create$/);
  assert.match(detail("ContainerRequested"), /image=\S+/);

  const json = replay(app.id, "--state-dir", dir.path, "--json");
  assert.equal(json.status, 0);
  const parsed = JSON.parse(json.stdout);
  assert.deepEqual(parsed.events[0].data.envs, [{ key: "TOKEN", value: "<redacted>" }]);
  for (
    const args of [[app.id, "--json"], [app.id, "--at", "999", "--json"], ["--json"], [app.id]]
  ) {
    assert.doesNotMatch(replay(...args, "--state-dir", dir.path).stdout, /s3cret/);
  }
});

Deno.test("replay --at SEQ or ISO time shows the state at that point", async () => {
  using dir = tempDir();
  const { app } = await populated(dir.path);
  const timeline = JSON.parse(replay(app.id, "--state-dir", dir.path, "--json").stdout);
  const created = timeline.events.find((e: { type: string }) => e.type === "CtCreated");
  const atSeq = JSON.parse(
    replay(app.id, "--at", String(created.seq), "--state-dir", dir.path, "--json").stdout,
  );
  assert.equal(atSeq.state, "configuringCt");
  assert.equal(atSeq.at.seq, created.seq);
  assert.deepEqual(atSeq.context.envs, [{ key: "TOKEN", value: "<redacted>" }]);
  assert.equal(typeof atSeq.context.vmid, "number");

  const before = replay(app.id, "--at", "2000-01-01T00:00:00Z", "--state-dir", dir.path);
  assert.match(before.stdout, /no events at that point/);
  const list = JSON.parse(
    replay("--at", String(created.seq), "--state-dir", dir.path, "--json").stdout,
  );
  assert.equal(
    list.streams.find((s: { stream: string }) => s.stream === app.id).state,
    "configuringCt",
  );
});

Deno.test("replay --verify is clean on a good log and lists illegal, unknown and corrupt events", async () => {
  using dir = tempDir();
  const { web, app } = await populated(dir.path);
  const clean = replay("--verify", "--state-dir", dir.path);
  assert.equal(clean.status, 0, clean.stdout);
  assert.match(clean.stdout, /every event is a legal transition/);

  const db = new DatabaseSync(databasePath(dir.path));
  const streamId = (name: string) =>
    (db.prepare("SELECT id FROM streams WHERE name = ?").get(name) as { id: number }).id;
  const insert = db.prepare(
    "INSERT INTO events (stream_id, version, type, type_version, data, meta, time) VALUES (?, ?, ?, 1, ?, '{}', 1)",
  );
  const next = (name: string) =>
    (db.prepare("SELECT max(version) + 1 AS v FROM events WHERE stream_id = ?").get(
      streamId(name),
    ) as { v: number }).v;
  insert.run(streamId(web.id), next(web.id), "NamespacesPinned", '{"paths":{}}'); // illegal in ready
  insert.run(streamId(web.id), next(web.id), "PodTeleported", "{}"); // unknown
  insert.run(streamId(app.id), next(app.id), "ContainerExited", "{not json");
  db.close();

  const { status, stdout } = replay("--verify", "--state-dir", dir.path);
  assert.equal(status, 1);
  assert.match(
    stdout,
    /NamespacesPinned\s+ready\s+NamespacesPinned is not accepted in state "ready"/,
  );
  assert.match(stdout, /PodTeleported\s+ready\s+unknown event type "PodTeleported"/);
  assert.match(
    stdout,
    new RegExp(`Corrupt event at seq \\d+ in stream "${app.id}": data is not JSON`),
  );
  const json = JSON.parse(replay("--verify", "--json", "--state-dir", dir.path).stdout);
  assert.ok(json.problems.length >= 3);
  // Other views still work and flag the bad rows.
  const timeline = replay(web.id, "--state-dir", dir.path);
  assert.equal(timeline.status, 0);
  assert.match(timeline.stdout, /PodTeleported\s+ready\s+! unknown event type/);
});

Deno.test("replay opens a log from an older schema read-only, without migrating it", () => {
  using dir = tempDir();
  const path = databasePath(dir.path);
  const db = new DatabaseSync(path);
  migrate(db, path, 1);
  db.exec(`
    INSERT INTO streams (id, name, kind) VALUES (1, 'legacy-pod', 'sandbox');
    INSERT INTO events (seq, stream_id, version, type, type_version, data, meta, time) VALUES
      (1, 1, 1, 'SandboxRequested', 1,
       '{"name":"old","uid":"u","namespace":"ns","attempt":0,"network":"net0","config":{}}', '{}', 1700000000000);
  `);
  db.close();
  const { status, stdout } = replay("legacy", "--state-dir", dir.path, "--json");
  assert.equal(status, 0);
  const view = JSON.parse(stdout);
  assert.equal(view.events[0].typeVersion, 2, "upcast on read");
  assert.deepEqual(view.events[0].data.networks, [{ name: "net0", ifname: "eth0" }]);
  const after = new DatabaseSync(path, { readOnly: true });
  assert.equal(
    (after.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
    1,
  );
  after.close();
  assert.ok(latestSchemaVersion > 1);
});

Deno.test("replay reads the log while a server is writing to it", async () => {
  using dir = tempDir();
  using rt = openKernel(databasePath(dir.path));
  const pods = Array.from({ length: 20 }, (_, i) => testPod(`busy${i}`));
  const writing = Promise.all(pods.map((p) => runPodSandbox(rt.registry, p)));
  await new Promise((resolve) => setTimeout(resolve, 1));
  const during = replay("--state-dir", dir.path, "--json");
  assert.equal(during.status, 0, during.stderr);
  await writing;
  const after = JSON.parse(replay("--state-dir", dir.path, "--json").stdout);
  assert.equal(after.streams.length, 20);
});

Deno.test("replay gives one clear line and status 2 for a bad prefix or bad arguments", async () => {
  using dir = tempDir();
  await populated(dir.path);
  const none = replay("zzz", "--state-dir", dir.path);
  assert.equal(none.status, 2);
  assert.equal(none.stderr.split("\n")[0], 'pve-cri replay: No stream matches "zzz"');
  const ambiguous = replay("", "--state-dir", dir.path);
  assert.equal(ambiguous.status, 2);
  assert.match(ambiguous.stderr, /matches 3 streams/);
  const badAt = replay("--at", "yesterday", "--state-dir", dir.path);
  assert.equal(badAt.status, 2);
  assert.match(badAt.stderr, /--at takes a seq number or an ISO time/);
});

/** Runs `main.ts replay` as its own process, as an operator would. */
async function replayProcess(...args: string[]) {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      main,
      "replay",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

Deno.test("a missing, malformed, newer or busy database: one error line, exit status 2, no stack trace", async () => {
  using dir = tempDir();
  const missing = await replayProcess("--state-dir", `${dir.path}/nothing`);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^pve-cri replay: No database at ".*\/nothing\/events.db"\n$/);

  Deno.mkdirSync(`${dir.path}/garbage`);
  Deno.writeTextFileSync(databasePath(`${dir.path}/garbage`), "this is not sqlite ".repeat(500));
  const malformed = await replayProcess("--state-dir", `${dir.path}/garbage`);
  assert.equal(malformed.code, 2);
  assert.match(
    malformed.stderr,
    /^pve-cri replay: Database ".*" is malformed: file is not a database\n$/,
  );

  await populated(`${dir.path}/good`);
  const bytes = Deno.readFileSync(databasePath(`${dir.path}/good`));
  Deno.mkdirSync(`${dir.path}/truncated`);
  Deno.writeFileSync(databasePath(`${dir.path}/truncated`), bytes.slice(0, 4096 + 100));
  const truncated = await replayProcess("--state-dir", `${dir.path}/truncated`, "--verify");
  assert.equal(truncated.code, 2);
  assert.match(truncated.stderr, /malformed/);
  assert.equal(truncated.stderr.trim().split("\n").length, 1);

  const newer = new DatabaseSync(databasePath(`${dir.path}/good`));
  newer.exec(`PRAGMA user_version = ${latestSchemaVersion + 1}`);
  const tooNew = await replayProcess("--state-dir", `${dir.path}/good`);
  assert.equal(tooNew.code, 2);
  assert.match(tooNew.stderr, /newer than this pve-cri knows/);
  newer.exec(`PRAGMA user_version = ${latestSchemaVersion}`);

  newer.exec("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; DELETE FROM projection_revisions");
  const busy = await replayProcess("--state-dir", `${dir.path}/good`, "--busy-timeout", "200");
  newer.exec("ROLLBACK");
  newer.close();
  assert.equal(busy.code, 2);
  assert.match(busy.stderr, /^pve-cri replay: Database ".*" is busy: database is locked\n$/);
});
