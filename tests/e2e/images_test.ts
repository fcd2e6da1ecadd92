/**
 * Images as an operator and the kubelet meet them: `deno task images` alone and beside a
 * running server, and PullImage over the socket against registries that work and that do not.
 */
import assert from "node:assert/strict";
import { connect, status } from "../_support/cri_client.ts";
import { startHostileRegistry } from "../_support/hostile_registry.ts";
import { buildImage } from "../_support/oci_images.ts";
import { registryMissing, startRegistry } from "../_support/registry.ts";
import { startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { smallImage, writeArchive } from "../_support/test_image.ts";

const main = new URL("../../main.ts", import.meta.url).pathname;

async function images(stateDir: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", main, "images", "--state-dir", stateDir, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    cwd: `${stateDir}/..`,
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

const missing = registryMissing("basic");

Deno.test({
  name: `deno task images works alone and beside a running server, which sees each change at once${
    missing === undefined ? "" : ` (skipped: ${missing})`
  }`,
  ignore: missing !== undefined,
  async fn() {
    using dir = tempDir();
    const stateDir = `${dir.path}/state`;
    const one = writeArchive(dir.path, smallImage({ Cmd: ["/one"] }), "one.tar");
    writeArchive(dir.path, smallImage({ Cmd: ["/two"] }), "two.tar");

    const alone = await images(stateDir, "import", one, "--name", "lab/one:v1");
    assert.equal(alone.code, 0, alone.stderr);
    assert.match(
      alone.stdout,
      /^Imported docker\.io\/lab\/one:v1: sha256:[0-9a-f]{64} \(1 layer, \d+B in [\d.]+ s, .*\/s\)\n$/,
      "without a terminal: one summary line",
    );

    await using server = await startServer({ dir: dir.path, stateDir });
    const cri = await connect(server.socket);
    try {
      const tags = async () =>
        (await cri.image.ListImages({})).images.flatMap((i: { repo_tags: string[] }) => i.repo_tags)
          .sort();
      assert.deepEqual(await tags(), ["docker.io/lab/one:v1"]);

      // A relative path: the server reads the archive, so the CLI makes it absolute.
      const beside = await images(stateDir, "import", "two.tar", "--name", "lab/two:v1");
      assert.equal(beside.code, 0, beside.stderr);
      assert.deepEqual(await tags(), ["docker.io/lab/one:v1", "docker.io/lab/two:v1"]);

      const pod = (await cri.runtime.RunPodSandbox({
        config: { metadata: { name: "p", uid: "p-uid", namespace: "ns" }, linux: {} },
      })).pod_sandbox_id;
      const ctr = (await cri.runtime.CreateContainer({
        pod_sandbox_id: pod,
        config: { metadata: { name: "c" }, image: { image: "lab/two:v1" }, linux: {} },
      })).container_id;
      const refused = await images(stateDir, "remove", "lab/two:v1");
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        new RegExp(`used by container "${ctr}": remove the container first`),
      );
      await rejectsCode(
        cri.image.RemoveImage({ image: { image: "lab/two:v1" } }),
        status.FAILED_PRECONDITION,
      );

      const listed = await images(stateDir, "list");
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^IMAGE\s+TAG\s+IMAGE ID\s+SIZE\n/);
      assert.match(listed.stdout, /docker\.io\/lab\/one\s+v1\s+[0-9a-f]{13}\s+\d+B/);

      const removed = await images(stateDir, "remove", "lab/one:v1");
      assert.equal(removed.code, 0, removed.stderr);
      assert.deepEqual(await tags(), ["docker.io/lab/two:v1"]);

      // Pull with credentials from a file, so the password is in no command line.
      const password = "cli-secret-p4ss";
      await using registry = await startRegistry({ auth: "basic", users: { bob: password } });
      await registry.push(
        "private/app",
        "v7",
        buildImage({ layers: [{ files: { x: { data: "x" } } }] }),
      );
      Deno.writeTextFileSync(`${dir.path}/creds`, `bob:${password}\n`, { mode: 0o600 });
      const pulled = await images(
        stateDir,
        "pull",
        `${registry.host}/private/app:v7`,
        "--creds-file",
        `${dir.path}/creds`,
      );
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.match(pulled.stdout, new RegExp(`^Pulled ${registry.host}/private/app:v7: sha256:`));
      const denied = await images(
        stateDir,
        "pull",
        `${registry.host}/private/app:v7`,
        "--creds",
        "bob:wrong-one",
      );
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /refused the credentials/);
      assert.ok((await tags()).includes(`${registry.host}/private/app:v7`));
      for (const text of [pulled.stdout, pulled.stderr, denied.stderr, server.stderr()]) {
        assert.doesNotMatch(text, new RegExp(password));
        assert.doesNotMatch(text, /wrong-one/);
      }
      const bad = await images(stateDir, "pull");
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /pull needs a REF/);
    } finally {
      cri.close();
    }
  },
});

async function rejectsCode(promise: Promise<unknown>, code: number, pattern?: RegExp) {
  await assert.rejects(promise, (error: { code: number; details: string }) => {
    assert.equal(error.code, code, error.details);
    if (pattern !== undefined) assert.match(error.details, pattern);
    return true;
  });
}

Deno.test("PullImage over the socket: a registry that is down, silent or refusing says so, before the deadline", async () => {
  using dir = tempDir();
  await using server = await startServer({ dir: dir.path });
  const cri = await connect(server.socket);
  try {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closed = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
    listener.close();
    await rejectsCode(
      cri.image.PullImage({ image: { image: `${closed}/team/app:v1` } }),
      status.UNAVAILABLE,
      new RegExp(`from ${closed}: cannot reach the registry`),
    );
    await using silent = startHostileRegistry("silent");
    const started = Date.now();
    await rejectsCode(
      cri.image.PullImage({ image: { image: `${silent.host}/team/app:v1` } }, { deadlineMs: 2000 }),
      status.DEADLINE_EXCEEDED,
      new RegExp(`from ${silent.host}: no answer before the deadline`),
    );
    assert.ok(silent.connections() > 0);
    assert.ok(Date.now() - started >= 1000, "it waited for the registry, not less");
    await rejectsCode(
      cri.image.PullImage({ image: { image: "bad::ref" } }),
      status.INVALID_ARGUMENT,
      /^image\.image: "bad::ref" is not a valid image reference/,
    );
    await rejectsCode(
      cri.image.PullImage({ image: { image: `registry.local/app@sha256:${"a".repeat(12)}` } }),
      status.INVALID_ARGUMENT,
      /bad digest/,
    );
    assert.equal((await cri.image.ListImages({})).images.length, 0);
  } finally {
    cri.close();
  }
});
