/**
 * The registry client against a real registry (Debian's docker-registry on loopback):
 * anonymous, basic auth, a token service; pinned digests, indexes, corrupt blobs, mirrors,
 * a CA file; and against registries that misbehave.
 */
import assert from "node:assert/strict";
import { ContentStore } from "../../../adapters/oci/content_store.ts";
import { parseImageReference } from "../../../adapters/oci/reference.ts";
import {
  RegistryClient,
  type RegistryClientOptions,
  type RegistryCredentials,
  RegistryHosts,
  type RegistrySettings,
} from "../../../adapters/registry/mod.ts";
import { buildImage, buildIndex, type TestImage } from "../../_support/oci_images.ts";
import { startHostileRegistry } from "../../_support/hostile_registry.ts";
import { registryMissing, startRegistry } from "../../_support/registry.ts";
import { tempDir } from "../../_support/temp_dir.ts";

const missing = registryMissing("basic");
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name: missing === undefined ? name : `${name} (skipped: ${missing})`,
    ignore: missing !== undefined,
    fn,
  });

const password = "correct-horse-battery";

function image(tag: string, layers = 2): TestImage {
  return buildImage({
    layers: Array.from(
      { length: layers },
      (_, i) => ({ files: { [`f${i}`]: { data: `${tag}-${i}` } } }),
    ),
    config: { Cmd: ["/bin/sh"], User: "1000" },
  });
}

function client(
  settings: Record<string, RegistrySettings> = {},
  options: Partial<RegistryClientOptions> = {},
) {
  return new RegistryClient({ hosts: new RegistryHosts(settings), ...options });
}

function resolve(
  c: RegistryClient,
  reference: string,
  credentials?: RegistryCredentials,
  signal = new AbortController().signal,
) {
  return c.repository(parseImageReference(reference), credentials).resolve(signal);
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp) {
  await assert.rejects(promise, (error: Error & { code?: string }) => {
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

test("a tag, a digest, and a tag with a digest resolve to the image; a wrong pin is refused", async () => {
  await using registry = await startRegistry();
  const app = image("app");
  await registry.push("team/app", "v1", app);
  const c = client();
  const byTag = await resolve(c, `${registry.host}/team/app:v1`);
  assert.equal(byTag.digest, app.manifest.digest);
  assert.equal(byTag.config.descriptor.digest, app.id);
  assert.equal(byTag.config.file.config.user, "1000");
  assert.equal(byTag.host, registry.host);
  const byDigest = await resolve(c, `${registry.host}/team/app@${app.manifest.digest}`);
  assert.equal(byDigest.manifestDigest, app.manifest.digest);
  const both = await resolve(c, `${registry.host}/team/app:v1@${app.manifest.digest}`);
  assert.equal(both.config.descriptor.digest, app.id);
  const other = image("other");
  await registry.push("team/app", "v2", other);
  // A digest pins the content: the tag given with it does not matter.
  const pinned = await resolve(c, `${registry.host}/team/app:v2@${app.manifest.digest}`);
  assert.equal(pinned.config.descriptor.digest, app.id);
  await rejectsWith(
    resolve(c, `${registry.host}/team/app@sha256:${"0".repeat(64)}`),
    "NotFound",
    new RegExp(
      `pulling ${registry.host}/team/app@sha256:0+ from ${registry.host}: manifest sha256:0+ not found`,
    ),
  );
  await rejectsWith(resolve(c, `${registry.host}/team/app:nope`), "NotFound", /MANIFEST_UNKNOWN/);
});

test("a multi-platform index gives linux/amd64; its digest is what the reference resolved to", async () => {
  await using registry = await startRegistry();
  const amd = image("amd");
  const arm = buildImage({ layers: [{ files: { a: { data: "arm" } } }], architecture: "arm64" });
  const index = buildIndex([
    { image: arm, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    { image: amd, platform: { os: "linux", architecture: "amd64" } },
  ]);
  await registry.pushIndex("team/multi", "v1", index, [arm, amd]);
  const resolved = await resolve(client(), `${registry.host}/team/multi:v1`);
  assert.equal(resolved.digest, index.digest);
  assert.equal(resolved.manifestDigest, amd.manifest.digest);
  assert.equal(resolved.config.descriptor.digest, amd.id);
  const armOnly = buildIndex([{ image: arm, platform: { os: "linux", architecture: "arm64" } }]);
  await registry.pushIndex("team/armonly", "v1", armOnly, [arm]);
  await rejectsWith(
    resolve(client(), `${registry.host}/team/armonly:v1`),
    "NotFound",
    /has no manifest for linux\/amd64 \(it has linux\/arm64\)/,
  );
});

test("basic auth: the right password pulls; a wrong or missing one is Unauthenticated, never quoted", async () => {
  await using registry = await startRegistry({ auth: "basic", users: { alice: password } });
  await registry.push("private/app", "v1", image("private"));
  const ref = `${registry.host}/private/app:v1`;
  const resolved = await resolve(client(), ref, { username: "alice", password });
  assert.equal(resolved.host, registry.host);
  const viaAuth = await resolve(client(), ref, { auth: btoa(`alice:${password}`) });
  assert.equal(viaAuth.digest, resolved.digest, "docker's base64 auth works too");
  await rejectsWith(
    resolve(client(), ref, { username: "alice", password: "wrong-password-123" }),
    "Unauthenticated",
    /the registry refused the credentials$/,
  );
  await rejectsWith(
    resolve(client(), ref),
    "Unauthenticated",
    /the registry requires credentials$/,
  );
  const error = await resolve(client(), ref, { username: "alice", password: "wrong-password-123" })
    .catch((e) => e);
  assert.doesNotMatch(`${error.message} ${error.stack}`, /wrong-password-123/);
});

test("token auth: a token is fetched with the credentials and reused for its lifetime", async () => {
  await using registry = await startRegistry({ auth: "token", users: { alice: password } });
  const app = image("tokened", 3);
  await registry.push("private/app", "v1", app);
  const c = client();
  const credentials = { username: "alice", password };
  const session = c.repository(parseImageReference(`${registry.host}/private/app:v1`), credentials);
  const signal = new AbortController().signal;
  const resolved = await session.resolve(signal);
  using dir = tempDir();
  const store = ContentStore.open(dir.path);
  for (const layer of resolved.manifest.layers) {
    await store.ingest(layer, (s) => session.blob(layer, s));
  }
  assert.equal(registry.tokensIssued(), 1, "one token for the manifest, the config and 3 blobs");
  await resolve(c, `${registry.host}/private/app:v1`, credentials);
  assert.equal(registry.tokensIssued(), 1, "and for the next pull of the same repository");
  await rejectsWith(
    resolve(c, `${registry.host}/private/app:v1`, { username: "alice", password: "nope-nope" }),
    "Unauthenticated",
    /token service at 127\.0\.0\.1:\d+ refused the credentials for repository:private\/app:pull/,
  );
  await rejectsWith(
    resolve(c, `${registry.host}/private/app:v1`),
    "Unauthenticated",
    /the registry requires credentials/,
  );
  const identity = await resolve(client(), `${registry.host}/private/app:v1`, {
    identityToken: registry.identityToken("alice"),
  });
  assert.equal(identity.digest, resolved.digest, "an identity token is exchanged (OAuth2 refresh)");
  const bearer = await resolve(client(), `${registry.host}/private/app:v1`, {
    registryToken: await registry.registryToken("private/app"),
  });
  assert.equal(bearer.digest, resolved.digest, "a registry token is sent as it is");
});

test("a blob whose bytes do not match its digest fails the fetch and stores nothing", async () => {
  await using registry = await startRegistry();
  const app = image("corrupt", 1);
  await registry.push("team/app", "v1", app);
  const layer = app.layers[0]!;
  const data = Deno.readFileSync(registry.blobPath(layer.digest));
  data[data.length - 1] = data[data.length - 1]! ^ 0xff; // same size, different bytes
  Deno.writeFileSync(registry.blobPath(layer.digest), data);
  const session = client().repository(parseImageReference(`${registry.host}/team/app:v1`));
  const resolved = await session.resolve(new AbortController().signal);
  using dir = tempDir();
  const store = ContentStore.open(dir.path);
  await rejectsWith(
    store.ingest(resolved.manifest.layers[0]!, (s) => session.blob(layer, s)),
    "DataLoss",
    /content does not match its digest/,
  );
  assert.deepEqual(store.list(), []);
  assert.deepEqual([...Deno.readDirSync(`${dir.path}/ingest`)], []);
});

test("mirrors are tried first: one that has the image serves it, one that fails hands over", async () => {
  await using upstream = await startRegistry();
  await using mirror = await startRegistry();
  await using broken = await startRegistry();
  const app = image("mirrored", 1);
  await upstream.push("team/app", "v1", app);
  await mirror.push("team/app", "v1", app);
  const settings = {
    [upstream.host]: {
      mirrors: [
        { url: `http://${broken.host}` },
        { url: `http://${mirror.host}` },
      ],
    },
  };
  const c = client(settings);
  const session = c.repository(parseImageReference(`${upstream.host}/team/app:v1`));
  const resolved = await session.resolve(new AbortController().signal);
  assert.equal(resolved.host, mirror.host, "the broken mirror lacks it; the next one has it");
  using dir = tempDir();
  await ContentStore.open(dir.path).ingest(
    resolved.manifest.layers[0]!,
    (s) => session.blob(app.layers[0]!, s),
  );
  assert.equal(mirror.blobFetches(app.layers[0]!.digest), 1);
  assert.equal(upstream.blobFetches(app.layers[0]!.digest), 0);
  // A mirror that may only pull by digest does not resolve tags: the server does.
  const pullOnly = client({
    [upstream.host]: { mirrors: [{ url: `http://${mirror.host}`, capabilities: ["pull"] }] },
  });
  assert.equal((await resolve(pullOnly, `${upstream.host}/team/app:v1`)).host, upstream.host);
});

Deno.test({
  name: `an HTTPS registry is trusted through its CA file, and refused without it${
    registryMissing() === undefined ? "" : ` (skipped: ${registryMissing()})`
  }`,
  ignore: registryMissing() !== undefined,
  async fn() {
    await using registry = await startRegistry({ tls: true });
    await registry.push("team/app", "v1", image("tls", 1));
    const ref = `${registry.host}/team/app:v1`;
    const trusted = client({ [registry.host]: { ca: registry.caFile! } });
    assert.equal((await resolve(trusted, ref)).host, registry.host);
    // A loopback registry that speaks TLS is not downgraded to plain HTTP: an unknown CA fails.
    await rejectsWith(
      resolve(client(), ref),
      "Unavailable",
      new RegExp(`cannot reach the registry`),
    );
  },
});

Deno.test("an unreachable registry fails at once, naming the host", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await rejectsWith(
    resolve(client(), `127.0.0.1:${port}/team/app:v1`),
    "Unavailable",
    new RegExp(
      `pulling 127\\.0\\.0\\.1:${port}/team/app:v1 from 127\\.0\\.0\\.1:${port}: cannot reach the registry`,
    ),
  );
});

Deno.test("a registry that never answers, or answers garbage, or endless or non-JSON manifests, fails in bounded time", async () => {
  await using silent = startHostileRegistry("silent");
  const caller = new AbortController();
  const deadline = setTimeout(() => caller.abort(new Error("the caller's deadline")), 300);
  await assert.rejects(
    resolve(client(), `${silent.host}/team/app:v1`, undefined, caller.signal),
    /the caller's deadline/,
  );
  clearTimeout(deadline);
  await rejectsWith(
    resolve(client({}, { requestTimeoutMs: 200 }), `${silent.host}/team/app:v1`),
    "DeadlineExceeded",
    new RegExp(`from ${silent.host}: no answer within 0\\.2 s`),
  );
  await using garbage = startHostileRegistry("garbage");
  await rejectsWith(
    resolve(client(), `${garbage.host}/team/app:v1`),
    "Unavailable",
    new RegExp(`from ${garbage.host}: cannot reach the registry`),
  );
  await using notJson = startHostileRegistry("not-json");
  await rejectsWith(
    resolve(client(), `${notJson.host}/team/app:v1`),
    "DataLoss",
    /manifest is not JSON/,
  );
  await using endless = startHostileRegistry("endless");
  await rejectsWith(
    resolve(client(), `${endless.host}/team/app:v1`),
    "DataLoss",
    /manifest is larger than 4194304 bytes/,
  );
});
