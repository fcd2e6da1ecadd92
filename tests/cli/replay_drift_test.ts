/**
 * `deno task replay --drift` asks the server that owns the state dir (its `GET /v1/drift`),
 * found through `server.json`: a table and exit 1 when anything differs, exit 0 when nothing
 * does, exit 2 with a reason when no server can answer.
 */
import assert from "node:assert/strict";
import { bufferOutput } from "../../cli/output.ts";
import { runDrift } from "../../cli/replay_drift.ts";
import { startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";

function announce(stateDir: string, info: Record<string, unknown>): void {
  Deno.mkdirSync(stateDir, { recursive: true });
  Deno.writeTextFileSync(`${stateDir}/server.json`, JSON.stringify(info));
}

Deno.test("replay --drift prints what the server reports and exits 1 when anything differs", async () => {
  using dir = tempDir();
  let drift: unknown[] = [
    { kind: "unexpected CT", subject: "900", detail: "pve-cri's CT for default/web" },
    { kind: "missing CT", subject: "101", detail: "container c1 is exited" },
  ];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) =>
      new URL(request.url).pathname === "/v1/drift"
        ? Response.json({ drift })
        : new Response("no", { status: 404 }),
  );
  try {
    announce(dir.path, {
      socket: "/x.sock",
      pid: Deno.pid,
      http: `http://127.0.0.1:${server.addr.port}`,
    });
    const out = bufferOutput();
    assert.equal(await runDrift(["--drift", "--state-dir", dir.path], out), 1);
    assert.match(out.stdout[0]!, /^KIND +SUBJECT +DETAIL\nunexpected CT +900 +pve-cri's CT/);
    assert.match(out.stdout[0]!, /\nmissing CT +101 +container c1 is exited$/);

    const json = bufferOutput();
    assert.equal(await runDrift(["--drift", "--json", "--state-dir", dir.path], json), 1);
    assert.equal(JSON.parse(json.stdout[0]!).drift.length, 2);

    drift = [];
    const clean = bufferOutput();
    assert.equal(await runDrift(["--drift", "--state-dir", dir.path], clean), 0);
    assert.deepEqual(clean.stdout, ["no drift"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("replay --drift with no server, or one without an HTTP endpoint, says so and exits 2", async () => {
  using dir = tempDir();
  const none = bufferOutput();
  assert.equal(await runDrift(["--drift", "--state-dir", dir.path], none), 2);
  assert.match(none.stderr[0]!, /none runs: start it with --http/);

  announce(dir.path, { socket: "/x.sock", pid: Deno.pid });
  const noHttp = bufferOutput();
  assert.equal(await runDrift(["--drift", "--state-dir", dir.path], noHttp), 2);
  assert.match(noHttp.stderr[0]!, new RegExp(`\\(pid ${Deno.pid}\\) serves no --http endpoint`));
});

Deno.test("replay --drift beside a running server: its state dir names its endpoint, nothing differs", async () => {
  using dir = tempDir();
  await using server = await startServer({ dir: dir.path, http: "127.0.0.1:0" });
  const info = JSON.parse(Deno.readTextFileSync(`${server.stateDir}/server.json`));
  assert.match(info.http, /^http:\/\/127\.0\.0\.1:\d+$/);
  const config = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)));
  const [, ...flags] = String(config.tasks.replay).split(/\s+/);
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: [
      ...flags.map((f) => f === "main.ts" ? new URL("../../main.ts", import.meta.url).pathname : f),
      "--drift",
      "--state-dir",
      server.stateDir,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(stdout).trim(), "no drift");
  assert.equal(code, 0);
});
