/**
 * Regression tests for denoland/deno#36788: with node:http2 under it, the CRI server's process
 * aborted inside nghttp2 (`find_stream_on_goaway_func: Assertion ... failed`, exit 134) when a
 * client closed its connection after a few hundred calls, within a few rounds. The server now
 * runs in a child process so a crash shows as its exit, not as the test runner's.
 */
import assert from "node:assert/strict";
import { connect, type CriClient, status } from "../../_support/cri_client.ts";
import { tempDir } from "../../_support/temp_dir.ts";

const serverScript = new URL("../../_support/cri_server_child.ts", import.meta.url).pathname;
const clientScript = new URL("../../_support/cri_client_child.ts", import.meta.url).pathname;

interface Child extends AsyncDisposable {
  /** Set once the process exited. */
  exited(): Deno.CommandStatus | undefined;
  stderr(): string;
}

/** Starts `script` with `args`, waits for `line` on its stdout. */
async function spawn(script: string, args: string[], line: string): Promise<Child> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exit: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => exit = s);
  let err = "";
  const errDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (err += chunk) }),
  ).catch(() => {});
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes(`${line}\n`)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${script} exited before "${line}": ${err}`);
    out += value;
  }
  const drain = (async () => {
    while (!(await reader.read()).done) { /* keep stdout flowing */ }
  })().catch(() => {});
  return {
    exited: () => exit,
    stderr: () => err,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await Promise.all([status, drain, errDone]);
    },
  };
}

/** `total` Version calls, `concurrency` at a time. */
async function versionCalls(client: CriClient, total: number, concurrency: number) {
  for (let done = 0; done < total; done += concurrency) {
    const batch = Math.min(concurrency, total - done);
    await Promise.all(Array.from({ length: batch }, () => client.runtime.Version({})));
  }
}

function assertAlive(server: Child, when: string): void {
  const exit = server.exited();
  assert.equal(exit, undefined, `server died ${when}: ${JSON.stringify(exit)} ${server.stderr()}`);
}

Deno.test("the server survives 10 rounds of 300 calls from a client that then closes, and answers afterwards", async () => {
  using dir = tempDir();
  const socketPath = `${dir.path}/cri.sock`;
  await using server = await spawn(serverScript, [socketPath], "ready");
  for (let round = 1; round <= 10; round++) {
    const client = await connect(socketPath);
    await versionCalls(client, 300, 10);
    client.close(); // sends GOAWAY: what used to abort the server
    await new Promise((resolve) => setTimeout(resolve, 20));
    assertAlive(server, `after round ${round}`);
  }
  const client = await connect(socketPath);
  try {
    assert.equal((await client.runtime.Version({})).runtime_name, "pve-cri");
  } finally {
    client.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  assertAlive(server, "at the end");
  assert.doesNotMatch(server.stderr(), /Assertion|panicked/);
});

Deno.test("the server survives clients that close or die with calls in flight", async () => {
  using dir = tempDir();
  const socketPath = `${dir.path}/cri.sock`;
  await using server = await spawn(serverScript, [socketPath], "ready");
  for (let round = 1; round <= 5; round++) {
    // grpc-js close() with 50 calls running: GOAWAY while the streams are open.
    const client = await connect(socketPath);
    const calls = Array.from(
      { length: 50 },
      () => client.runtime.RunPodSandbox({ config: { metadata: { attempt: 30 } } }),
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
    client.close();
    const settled = await Promise.allSettled(calls);
    for (const result of settled) {
      if (result.status === "rejected") assert.notEqual(result.reason.code, status.OK);
    }
    // A client process killed outright with its calls in flight: no GOAWAY, just a dead socket.
    await using killed = await spawn(clientScript, [socketPath, "50"], "started");
    await killed[Symbol.asyncDispose]();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assertAlive(server, `after round ${round}`);
  }
  const client = await connect(socketPath);
  try {
    assert.equal((await client.runtime.Version({})).runtime_name, "pve-cri");
    const slow = await client.runtime.RunPodSandbox({ config: { metadata: { attempt: 1 } } });
    assert.equal(slow.pod_sandbox_id, "done");
  } finally {
    client.close();
  }
  assertAlive(server, "at the end");
});
