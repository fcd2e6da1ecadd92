/**
 * Images through the runtime, as the CRI reaches them: pulls from a real registry (Debian's
 * docker-registry on loopback) into the content store and onto the simulator's template
 * storage, imports, names, removal, and what the event log and logs keep of them.
 */
import { FakeCni } from "../../adapters/cni/fake_cni.ts";
import { FakeNode } from "../../adapters/node/fake_node.ts";
import assert from "node:assert/strict";
import { writeProxmoxConfig } from "../../adapters/proxmox/mod.ts";
import { simulatorConfig, skopeoPuller, startSimulator } from "../../adapters/proxmox/sim/mod.ts";
import { runReplay } from "../../cli/replay.ts";
import { bufferOutput } from "../../cli/output.ts";
import { Logger, silentLogger } from "../../lib/log.ts";
import { type Backend, type OpenRuntime, openRuntime } from "../../runtime/open_runtime.ts";
import {
  buildImage,
  buildIndex,
  busyboxPath,
  busyboxRootfs,
  dockerSaveArchive,
  randomBytes,
  tarOf,
  type TestImage,
} from "../_support/oci_images.ts";
import { registryMissing, skopeoMissing, startRegistry } from "../_support/registry.ts";
import { containerSpec, sandboxSpec } from "../_support/specs.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { writeArchive } from "../_support/test_image.ts";

const missing = registryMissing("basic");
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name: missing === undefined ? name : `${name} (skipped: ${missing})`,
    ignore: missing !== undefined,
    fn,
  });

const call = { meta: { method: "test" } };
const busyboxMissing = missing ??
  (busyboxPath === undefined ? "busybox-static is not installed" : undefined);

function open(
  stateDir: string,
  options: { log?: Logger; backend?: Backend; configFile?: string } = {},
) {
  return openRuntime({
    stateDir,
    backend: options.backend ?? "memory",
    ...(options.configFile === undefined ? {} : { configFile: options.configFile }),
    log: options.log ?? silentLogger,
    version: "test",
    // These tests are about images: no process runs, so the node stand-ins serve every backend.
    node: new FakeNode(),
    cni: new FakeCni(),
  });
}

function app(tag: string, layers = 2, config: Record<string, unknown> = { Cmd: ["/bin/sh"] }) {
  return buildImage({
    layers: Array.from(
      { length: layers },
      (_, i) => ({ files: { [`f${i}`]: { data: `${tag}-${i}` } } }),
    ),
    config,
  });
}

function imageEvents(rt: OpenRuntime): string[] {
  return rt.store.readAll(0, 100_000).filter((e) => e.kind === "image").map((e) => e.type);
}

async function templates(rt: OpenRuntime): Promise<string[]> {
  return (await rt.api.listStorageContent({ storage: "local", content: "vztmpl" })).map((v) =>
    v.volid
  );
}

function ingestLeft(stateDir: string): string[] {
  return [...Deno.readDirSync(`${stateDir}/content/ingest`)].map((e) => e.name);
}

test("a tag, a digest or both pull the image once, however many callers ask at the same time", async () => {
  using dir = tempDir();
  await using registry = await startRegistry();
  const image = app("once", 3, { Cmd: ["/bin/sh"], User: "1000:1000" });
  await registry.push("team/app", "v1", image);
  const rt = await open(dir.path);
  try {
    const ref = `${registry.host}/team/app:v1`;
    const pulls = await Promise.all([0, 1, 2, 3].map(() => rt.runtime.pullImage(ref, call)));
    assert.equal(new Set(pulls.map((p) => p.id)).size, 1);
    for (const layer of image.layers) {
      assert.equal(registry.blobFetches(layer.digest), 1, layer.digest);
    }
    const view = pulls[0]!;
    assert.equal(view.id, image.id);
    assert.deepEqual(view.repoTags, [ref]);
    assert.deepEqual(view.repoDigests, [`${registry.host}/team/app@${image.manifest.digest}`]);
    assert.equal(view.uid, "1000");
    assert.equal(view.username, "");
    assert.equal(view.size, image.config.size + image.layers.reduce((s, l) => s + l.size, 0));
    assert.deepEqual(imageEvents(rt), [
      "ImagePullStarted",
      "ImageContentStored",
      "ImageTemplateStored",
      "ImageTagged",
    ]);
    const pinned = `${registry.host}/team/app@${image.manifest.digest}`;
    assert.equal((await rt.runtime.pullImage(pinned, call)).id, image.id);
    assert.equal(
      (await rt.runtime.pullImage(`${ref}@${image.manifest.digest}`, call)).id,
      image.id,
    );
    for (const name of [ref, pinned, image.id, image.id.slice(7), image.id.slice(7, 19)]) {
      assert.equal((await rt.runtime.image(name))?.id, image.id, name);
    }
    assert.equal(imageEvents(rt).length, 4, "pulling what is present records nothing new");
    assert.equal(registry.blobFetches(image.layers[0]!.digest), 1);
    const fs = await rt.runtime.imageFsInfo();
    assert.ok(fs.usedBytes >= view.size, `${fs.usedBytes} bytes used`);
    assert.ok(fs.inodesUsed >= 2 + 1 + 1 + 3, `${fs.inodesUsed} inodes`);
    assert.match(fs.mountpoint, /\/content$/);
  } finally {
    await rt.close();
  }
});

test("the same content under another name is one image, one template: tags move, nothing is uploaded twice", async () => {
  using dir = tempDir();
  await using registry = await startRegistry();
  const first = app("first");
  await registry.push("team/app", "v1", first);
  await registry.push("mirror/app", "stable", first);
  const rt = await open(dir.path);
  try {
    await rt.runtime.pullImage(`${registry.host}/team/app:v1`, call);
    const again = await rt.runtime.pullImage(`${registry.host}/mirror/app:stable`, call);
    assert.deepEqual(again.repoTags, [
      `${registry.host}/team/app:v1`,
      `${registry.host}/mirror/app:stable`,
    ]);
    assert.equal((await templates(rt)).length, 1);
    // v1 now names other content: the tag moves to it, the old image keeps its other name.
    const second = app("second");
    await registry.push("team/app", "v1", second);
    await rt.runtime.pullImage(`${registry.host}/team/app:v1`, call);
    const listed = Object.fromEntries((await rt.runtime.images()).map((i) => [i.id, i.repoTags]));
    assert.deepEqual(listed, {
      [first.id]: [`${registry.host}/mirror/app:stable`],
      [second.id]: [`${registry.host}/team/app:v1`],
    });
    assert.ok(imageEvents(rt).includes("ImageUntagged"));
  } finally {
    await rt.close();
  }
});

test("a template already in the storage (another node's, an earlier state dir's) is not uploaded again", async () => {
  using dir = tempDir();
  await using registry = await startRegistry();
  const image = app("shared");
  await registry.push("team/app", "v1", image);
  const sim = await startSimulator({ stateDir: `${dir.path}/sim` });
  try {
    writeProxmoxConfig(`${dir.path}/pve.json`, simulatorConfig(sim));
    const uploads: boolean[] = [];
    for (const node of ["a", "b"]) {
      const rt = await open(`${dir.path}/${node}`, {
        backend: "proxmox",
        configFile: `${dir.path}/pve.json`,
      });
      try {
        await rt.runtime.pullImage(`${registry.host}/team/app:v1`, call);
        const stored = rt.store.readAll(0, 1000).find((e) => e.type === "ImageTemplateStored");
        uploads.push((stored?.data as { uploaded: boolean }).uploaded);
      } finally {
        await rt.close();
      }
    }
    assert.deepEqual(uploads, [true, false]);
  } finally {
    await sim.close();
  }
});

test("a blob that does not match its digest fails the pull: DataLoss, nothing stored, no image", async () => {
  using dir = tempDir();
  await using registry = await startRegistry();
  const image = app("corrupt", 2);
  await registry.push("team/app", "v1", image);
  const layer = image.layers[1]!;
  const bytes = Deno.readFileSync(registry.blobPath(layer.digest));
  bytes[0] = bytes[0]! ^ 0xff;
  Deno.writeFileSync(registry.blobPath(layer.digest), bytes);
  const rt = await open(dir.path);
  try {
    await assert.rejects(
      rt.runtime.pullImage(`${registry.host}/team/app:v1`, call),
      (e: Error & { code?: string }) =>
        e.code === "DataLoss" && /does not match its digest/.test(e.message),
    );
    assert.deepEqual(await rt.runtime.images(), []);
    assert.ok(
      ![...Deno.readDirSync(`${dir.path}/content/blobs/sha256`)].some((e) =>
        e.name === layer.digest.slice(7)
      ),
    );
    assert.deepEqual(ingestLeft(dir.path), []);
    assert.deepEqual(imageEvents(rt), ["ImagePullStarted", "ImageContentFailed"]);
    assert.deepEqual(await templates(rt), []);
  } finally {
    await rt.close();
  }
});

test("a pull its caller cancels stops, leaves no partial file, and records why", async () => {
  using dir = tempDir();
  await using registry = await startRegistry();
  const big = buildImage({
    layers: [{ files: { big: { data: randomBytes(24 * 1024 * 1024) } }, compression: "none" }],
  });
  await registry.push("team/big", "v1", big);
  const rt = await open(dir.path);
  try {
    const caller = new AbortController();
    const pull = rt.runtime.pullImage(`${registry.host}/team/big:v1`, {
      ...call,
      signal: caller.signal,
    }, {
      onProgress: (p) => {
        if (p.kind === "layer" && p.done > 0 && p.done < p.total) {
          caller.abort(new Error("kubelet gave up"));
        }
      },
    });
    await assert.rejects(pull, /kubelet gave up/);
    for (let i = 0; i < 200 && !imageEvents(rt).includes("ImageContentFailed"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(imageEvents(rt), ["ImagePullStarted", "ImageContentFailed"]);
    const failed = rt.store.readAll(0, 100).find((e) => e.type === "ImageContentFailed")!;
    assert.match(JSON.stringify(failed.data), /cancelled: every caller waiting for it gave up/);
    assert.deepEqual(ingestLeft(dir.path), []);
    assert.equal(rt.images.fsInfo().usedBytes < 1024 * 1024, true, "no layer bytes kept");
    // A later pull starts over and completes.
    assert.equal((await rt.runtime.pullImage(`${registry.host}/team/big:v1`, call)).id, big.id);
  } finally {
    await rt.close();
  }
});

test("an image a container uses cannot be removed; removal takes its template and unshared blobs", async () => {
  using dir = tempDir();
  await using registry = await startRegistry();
  const base = { base: { data: "shared base layer" } };
  const one = buildImage({ layers: [{ files: base }, { files: { one: { data: "1" } } }] });
  const two = buildImage({ layers: [{ files: base }, { files: { two: { data: "2" } } }] });
  await registry.push("team/one", "v1", one);
  await registry.push("team/two", "v1", two);
  const rt = await open(dir.path);
  try {
    await rt.runtime.pullImage(`${registry.host}/team/one:v1`, call);
    await rt.runtime.pullImage(`${registry.host}/team/two:v1`, call);
    assert.equal(registry.blobFetches(one.layers[0]!.digest), 1, "the shared layer came once");
    const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
    const ctr = await rt.runtime.createContainer(
      pod.id,
      containerSpec("app", { image: `${registry.host}/team/one:v1` }),
      call,
    );
    await assert.rejects(
      rt.runtime.removeImage(`${registry.host}/team/one:v1`, call),
      (e: Error & { code?: string; details?: Record<string, unknown> }) =>
        e.code === "FailedPrecondition" && e.message.includes(`container "${ctr.id}"`) &&
        e.details?.container_id === ctr.id,
    );
    await rt.runtime.removeContainer(ctr.id, call);
    const before = await templates(rt);
    assert.equal(before.length, 2);
    await rt.runtime.removeImage(one.id.slice(7, 19), call);
    assert.deepEqual((await rt.runtime.images()).map((i) => i.id), [two.id]);
    assert.equal((await templates(rt)).length, 1);
    const blobs = (d: string) => Deno.statSync(`${dir.path}/content/blobs/sha256/${d.slice(7)}`);
    assert.ok(blobs(one.layers[0]!.digest), "the base layer two uses is kept");
    assert.throws(() => blobs(one.layers[1]!.digest), Deno.errors.NotFound);
    await rt.runtime.removeImage(`${registry.host}/team/one:v1`, call); // absent: fine
    await rt.runtime.removeImage(`${registry.host}/team/two@${two.manifest.digest}`, call);
    assert.deepEqual(await rt.runtime.images(), []);
    assert.deepEqual(await templates(rt), []);
    assert.deepEqual(
      [...Deno.readDirSync(`${dir.path}/content/blobs/sha256`)],
      [],
      "the last image took every blob with it",
    );
  } finally {
    await rt.close();
  }
});

test("credentials never reach an event, a log line, an error text or replay output", async () => {
  using dir = tempDir();
  const password = "pa55-w0rd-never-shown";
  await using registry = await startRegistry({ auth: "basic", users: { alice: password } });
  await registry.push("private/app", "v1", app("private"));
  const lines: string[] = [];
  const log = new Logger("debug", {}, { write: (line) => lines.push(line) });
  const rt = await open(dir.path, { log });
  const errors: string[] = [];
  try {
    const ref = `${registry.host}/private/app:v1`;
    const wrong = await rt.runtime.pullImage(ref, call, {
      auth: { username: "alice", password: `${password}-wrong` },
    }).catch((e) => e);
    errors.push(String(wrong.message), String(wrong.stack));
    assert.equal(wrong.code, "Unauthenticated");
    const encoded = await rt.runtime.pullImage(ref, call, {
      auth: { auth: btoa(`alice:${password}`) },
    });
    assert.deepEqual(encoded.repoTags, [ref]);
  } finally {
    await rt.close();
  }
  const out = bufferOutput();
  assert.equal(runReplay(["--state-dir", dir.path, "--json"], out), 0);
  const stream = JSON.parse(out.stdout.join("\n")).streams.find((s: { kind: string }) =>
    s.kind === "image"
  );
  const timeline = bufferOutput();
  runReplay(["--state-dir", dir.path, "--json", stream.stream], timeline);
  const db = new TextDecoder().decode(Deno.readFileSync(`${dir.path}/events.db`));
  const wal = (() => {
    try {
      return new TextDecoder().decode(Deno.readFileSync(`${dir.path}/events.db-wal`));
    } catch {
      return "";
    }
  })();
  const everything = [...lines, ...errors, ...out.stdout, ...timeline.stdout, db, wal].join("\n");
  assert.ok(lines.length > 0 && timeline.stdout.join("").includes("ImagePullStarted"));
  assert.doesNotMatch(everything, new RegExp(password));
  assert.doesNotMatch(everything, new RegExp(btoa(`alice:${password}`).replace(/[+/=]/g, ".")));
});

Deno.test({
  name:
    `imported archives (OCI layout, docker save) make CTs with the image's command, env and user${
      busyboxPath === undefined ? " (skipped: busybox-static is not installed)" : ""
    }`,
  ignore: busyboxPath === undefined,
  async fn() {
    using dir = tempDir();
    const rt = await open(`${dir.path}/state`);
    try {
      const oci = writeArchive(
        dir.path,
        buildImage({
          layers: [{ files: busyboxRootfs() }],
          config: {
            Entrypoint: ["/bin/sh", "-c"],
            Cmd: ["echo hello"],
            Env: ["PATH=/bin", "GREETING=hi"],
            User: "1000:1000",
            WorkingDir: "/tmp",
          },
        }),
        "oci.tar",
      );
      const files = busyboxRootfs();
      const docker: TestImage = buildImage({
        docker: true,
        layers: [{ files, compression: "none" }],
        config: { Cmd: ["/bin/sleep", "60"], User: "app" },
      });
      Deno.writeFileSync(
        `${dir.path}/docker.tar`,
        dockerSaveArchive(docker, ["lab/sleeper:v1"], [tarOf(files)]),
      );
      const imported = await rt.runtime.importImage(oci, call, { name: "lab/hello:v1" });
      const saved = await rt.runtime.importImage(`${dir.path}/docker.tar`, call);
      assert.deepEqual(saved.repoTags, ["docker.io/lab/sleeper:v1"]);
      assert.equal(saved.username, "app");
      assert.equal(imported.uid, "1000");
      const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
      const spec = containerSpec("app", { image: "lab/hello:v1", command: [], args: [], envs: [] });
      const hello = await rt.runtime.createContainer(pod.id, spec, call);
      const config = await rt.api.ctConfig({ vmid: hello.vmid! });
      assert.equal(config.entrypoint, "/bin/sh -c 'echo hello'");
      assert.equal(config.env, "PATH=/bin\0GREETING=hi");
      assert.deepEqual(config.lxc?.filter(([k]) => k.startsWith("lxc.init")), [
        ["lxc.init.uid", "1000"],
        ["lxc.init.gid", "1000"],
        ["lxc.init.cwd", "/tmp"],
      ]);
      const sleeper = await rt.runtime.createContainer(
        pod.id,
        containerSpec("sleeper", { image: "lab/sleeper:v1", command: [], args: [], envs: [] }),
        call,
      );
      assert.equal((await rt.api.ctConfig({ vmid: sleeper.vmid! })).entrypoint, "/bin/sleep 60");
    } finally {
      await rt.close();
    }
  },
});

Deno.test({
  name:
    `busybox images from the registry: several layers with whiteouts, and a multi-platform index${
      busyboxMissing === undefined ? "" : ` (skipped: ${busyboxMissing})`
    }`,
  ignore: busyboxMissing !== undefined,
  async fn() {
    using dir = tempDir();
    await using registry = await startRegistry();
    const layered = buildImage({
      layers: [
        {
          files: {
            ...busyboxRootfs(),
            "etc/removed.conf": { data: "gone in the next layer\n" },
            "data": { type: "directory" },
            "data/old": { data: "hidden by an opaque whiteout\n" },
          },
        },
        {
          files: {
            "etc/.wh.removed.conf": { data: "" },
            "data/.wh..wh..opq": { data: "" },
            "data/new": { data: "the only file left in /data\n" },
          },
        },
        { files: { "etc/motd": { data: "uncompressed layer\n" } }, compression: "none" },
      ],
      config: { Entrypoint: ["/bin/sh", "-c"], Cmd: ["cat /etc/motd"], User: "1000" },
    });
    await registry.push("library/busybox", "layered", layered);
    const arm = buildImage({
      layers: [{ files: { "bin/busybox": { data: "not for this node" } } }],
      architecture: "arm64",
    });
    const index = buildIndex([
      { image: arm, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      { image: layered, platform: { os: "linux", architecture: "amd64" } },
    ]);
    await registry.pushIndex("library/busybox", "multi", index, [arm, layered]);
    const rt = await open(dir.path);
    try {
      const byTag = await rt.runtime.pullImage(`${registry.host}/library/busybox:layered`, call);
      assert.equal(byTag.id, layered.id);
      const multi = await rt.runtime.pullImage(`${registry.host}/library/busybox:multi`, call);
      assert.equal(multi.id, layered.id, "the index's linux/amd64 image is the same image");
      assert.deepEqual(multi.repoDigests, [
        `${registry.host}/library/busybox@${layered.manifest.digest}`,
        `${registry.host}/library/busybox@${index.digest}`,
      ]);
      for (const layer of layered.layers) assert.equal(registry.blobFetches(layer.digest), 1);
      assert.equal(registry.blobFetches(arm.layers[0]!.digest), 0, "nothing of arm64 is fetched");
      const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
      const ctr = await rt.runtime.createContainer(
        pod.id,
        containerSpec("app", {
          image: `${registry.host}/library/busybox:multi`,
          command: [],
          args: [],
          envs: [],
        }),
        call,
      );
      const config = await rt.api.ctConfig({ vmid: ctr.vmid! });
      assert.equal(config.entrypoint, "/bin/sh -c 'cat /etc/motd'");
      assert.deepEqual(config.lxc?.find(([k]) => k === "lxc.init.uid"), ["lxc.init.uid", "1000"]);
    } finally {
      await rt.close();
    }
  },
});

test("malformed references are InvalidArgument naming the field, and change nothing", async () => {
  using dir = tempDir();
  const rt = await open(dir.path);
  try {
    for (const bad of ["bad::ref", "Upper/Case:v1", "app@sha256:abc123", "", "a".repeat(300)]) {
      await assert.rejects(
        rt.runtime.pullImage(bad, call),
        (e: Error & { code?: string }) =>
          e.code === "InvalidArgument" && /^image\.image: /.test(e.message),
        bad,
      );
    }
    await assert.rejects(rt.runtime.removeImage("bad::ref", call), /image\.image/);
    assert.deepEqual(imageEvents(rt), []);
  } finally {
    await rt.close();
  }
});

const pveMissing = missing ?? skopeoMissing();

Deno.test({
  name:
    `images.pull "proxmox" has PVE's oci-registry-pull fetch anonymous tags; digests stay pve-cri's${
      pveMissing === undefined ? "" : ` (skipped: ${pveMissing})`
    }`,
  ignore: pveMissing !== undefined,
  async fn() {
    using dir = tempDir();
    await using registry = await startRegistry();
    const image = app("via-pve", 1, { Cmd: ["/bin/true"] });
    await registry.push("team/app", "v1", image);
    const conf = `${dir.path}/registries.conf`;
    Deno.writeTextFileSync(conf, `[[registry]]\nlocation = "${registry.host}"\ninsecure = true\n`);
    const sim = await startSimulator({
      stateDir: `${dir.path}/sim`,
      puller: skopeoPuller({ registriesConf: conf }),
    });
    try {
      const config = { ...simulatorConfig(sim), images: { pull: "proxmox" } };
      Deno.writeTextFileSync(`${dir.path}/config.json`, JSON.stringify(config));
      const rt = await open(`${dir.path}/state`, {
        backend: "proxmox",
        configFile: `${dir.path}/config.json`,
      });
      try {
        const view = await rt.runtime.pullImage(`${registry.host}/team/app:v1`, call);
        assert.match(view.volid, /^local:vztmpl\/pve-cri-pve-[0-9a-f]{64}\.tar$/);
        assert.equal(registry.blobFetches(image.layers[0]!.digest), 1, "skopeo fetched the layer");
        const started = rt.store.readAll(0, 100).find((e) => e.type === "ImagePullStarted")!;
        assert.equal((started.data as { via?: string }).via, "proxmox");
        const pod = await rt.runtime.runPodSandbox(sandboxSpec("web"), call);
        const ctr = await rt.runtime.createContainer(
          pod.id,
          containerSpec("app", {
            image: `${registry.host}/team/app:v1`,
            command: [],
            args: [],
            envs: [],
          }),
          call,
        );
        assert.equal((await rt.api.ctConfig({ vmid: ctr.vmid! })).entrypoint, "/bin/true");
      } finally {
        await rt.close();
      }
    } finally {
      await sim.close();
    }
  },
});
