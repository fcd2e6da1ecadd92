/**
 * A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on a loopback
 * port, with its storage in a temp dir: anonymous, with htpasswd basic auth, or behind a token
 * service of the tests' own (JWTs signed with a key the registry trusts). Images are pushed
 * with the distribution API itself. Its access log tells which blobs were fetched.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadOrCreatePki } from "../../adapters/proxmox/sim/pki.ts";
import type { Blob, TestImage } from "./oci_images.ts";

export const registryBinary = (() => {
  for (const path of ["/usr/bin/docker-registry", "/usr/bin/registry"]) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not here */ }
  }
  return undefined;
})();

export const htpasswdBinary = (() => {
  try {
    return Deno.statSync("/usr/bin/htpasswd").isFile ? "/usr/bin/htpasswd" : undefined;
  } catch {
    return undefined;
  }
})();

/** Why skopeo cannot run here (the simulator's oci-registry-pull, the benchmark), if it cannot. */
export function skopeoMissing(): string | undefined {
  try {
    return Deno.statSync("/usr/bin/skopeo").isFile ? undefined : "skopeo is not installed";
  } catch {
    return "skopeo is not installed";
  }
}

/** Why registry tests cannot run here, or undefined when they can. */
export function registryMissing(auth: "none" | "basic" | "token" = "none"): string | undefined {
  if (registryBinary === undefined) return "docker-registry is not installed";
  if (auth === "basic" && htpasswdBinary === undefined) return "htpasswd is not installed";
  return undefined;
}

export interface TestRegistry extends AsyncDisposable {
  /** `127.0.0.1:PORT`, what image references name. */
  host: string;
  dir: string;
  push(repository: string, tag: string, image: TestImage): Promise<void>;
  /** Pushes each platform image by digest, then the index under `tag`. */
  pushIndex(repository: string, tag: string, index: Blob, images: TestImage[]): Promise<void>;
  /** Where the registry keeps a blob's bytes (to corrupt it). */
  blobPath(digest: string): string;
  /** GETs of blob `digest` in the access log so far. */
  blobFetches(digest: string): number;
  /** Tokens the token service issued (token mode). */
  tokensIssued(): number;
  /** The CA that signed the registry's certificate (tls mode). */
  caFile: string | undefined;
  /** An OAuth2 refresh token the token service takes for `user` (token mode). */
  identityToken(user: string): string;
  /** A bearer token granting pull on `repository`, to hand over as it is (token mode). */
  registryToken(repository: string): Promise<string>;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  auth?: "none" | "basic" | "token";
  /** Serve HTTPS with a certificate from a CA of the test's own (`caFile`). */
  tls?: boolean;
  /** Users for basic or token auth. */
  users?: Record<string, string>;
  /** Token lifetime the token service announces, seconds. */
  tokenLifetimeS?: number;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  if (registryBinary === undefined) throw new Error("docker-registry is not installed");
  const auth = options.auth ?? "none";
  const users = options.users ?? { alice: "s3cret-pass" };
  const dir = Deno.makeTempDirSync({ prefix: "pve-cri-registry-" });
  const port = freePort();
  const host = `127.0.0.1:${port}`;
  let authConfig = "";
  let tokens: TokenService | undefined;
  if (auth === "basic") {
    const lines: string[] = [];
    for (const [user, password] of Object.entries(users)) {
      const out = await new Deno.Command(htpasswdBinary!, {
        args: ["-Bbn", "-C", "4", user, password],
        stdout: "piped",
      }).output();
      lines.push(new TextDecoder().decode(out.stdout).trim());
    }
    Deno.writeTextFileSync(join(dir, "htpasswd"), lines.join("\n") + "\n");
    authConfig = `auth:\n  htpasswd:\n    realm: pve-cri-test\n    path: ${
      join(dir, "htpasswd")
    }\n`;
  } else if (auth === "token") {
    tokens = await startTokenService(users, options.tokenLifetimeS ?? 300);
    Deno.writeTextFileSync(join(dir, "token.pem"), tokens.certPem);
    authConfig = `auth:\n  token:\n    realm: http://${tokens.host}/token\n` +
      `    service: pve-cri-test\n    issuer: pve-cri-test-issuer\n` +
      `    rootcertbundle: ${join(dir, "token.pem")}\n`;
  }
  let tlsConfig = "";
  let caFile: string | undefined;
  if (options.tls) {
    const pki = await loadOrCreatePki(join(dir, "pki"), { node: "registry", hosts: ["127.0.0.1"] });
    caFile = join(dir, "pki", "pve-root-ca.pem");
    tlsConfig = `  tls:\n    certificate: ${join(dir, "pki", "pve-ssl.pem")}\n` +
      `    key: ${join(dir, "pki", "pve-ssl.key")}\n`;
    assert(pki.caPem.length > 0);
  }
  Deno.writeTextFileSync(
    join(dir, "config.yml"),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${
      join(dir, "data")
    }\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n  secret: pve-cri-test-secret\n${tlsConfig}${authConfig}`,
  );
  const scheme = options.tls ? "https" : "http";
  const client = caFile === undefined
    ? undefined
    : Deno.createHttpClient({ caCerts: [Deno.readTextFileSync(caFile)] });
  const get = (url: string, init: RequestInit = {}) =>
    fetch(
      url.replace(/^http:/, `${scheme}:`),
      { ...init, ...(client ? { client } : {}) } as RequestInit,
    );
  const child = new Deno.Command(registryBinary, {
    args: ["serve", join(dir, "config.yml")],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const collect = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (chunk) => void (log += chunk) }),
    ).catch(() => {});
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const response = await get(`http://${host}/v2/`);
      await response.body?.cancel();
      if (response.status === 200 || response.status === 401) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`docker-registry did not start: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  const pushAuth = async (repository: string): Promise<Record<string, string>> => {
    if (auth === "basic") {
      const [user, password] = Object.entries(users)[0]!;
      return { authorization: `Basic ${btoa(`${user}:${password}`)}` };
    }
    if (auth === "token") return { authorization: `Bearer ${await tokens!.mint(repository)}` };
    return {};
  };
  const pushBlob = async (repository: string, b: Blob) => {
    const head = await get(`http://${host}/v2/${repository}/blobs/${b.digest}`, {
      method: "HEAD",
      headers: await pushAuth(repository),
    });
    if (head.status === 200) return;
    const start = await get(`http://${host}/v2/${repository}/blobs/uploads/`, {
      method: "POST",
      headers: await pushAuth(repository),
    });
    await start.body?.cancel();
    if (start.status !== 202) throw new Error(`upload start: HTTP ${start.status}`);
    const location = new URL(start.headers.get("location")!, `${scheme}://${host}`);
    location.searchParams.set("digest", b.digest);
    const put = await get(location.href, {
      method: "PUT",
      headers: { ...await pushAuth(repository), "content-type": "application/octet-stream" },
      body: b.data as Uint8Array<ArrayBuffer>,
    });
    await put.body?.cancel();
    if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status}`);
  };
  const pushManifest = async (repository: string, reference: string, b: Blob) => {
    const put = await get(`http://${host}/v2/${repository}/manifests/${reference}`, {
      method: "PUT",
      headers: { ...await pushAuth(repository), "content-type": b.mediaType },
      body: b.data as Uint8Array<ArrayBuffer>,
    });
    const text = await put.text();
    if (put.status !== 201) throw new Error(`manifest push: HTTP ${put.status}: ${text}`);
  };
  const pushImage = async (repository: string, reference: string, image: TestImage) => {
    for (const b of [image.config, ...image.layers]) await pushBlob(repository, b);
    await pushManifest(repository, reference, image.manifest);
  };

  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await drained;
      await tokens?.close();
      client?.close();
      Deno.removeSync(dir, { recursive: true });
    })();
  return {
    host,
    dir,
    push: pushImage,
    async pushIndex(repository, tag, index, images) {
      for (const image of images) await pushImage(repository, image.manifest.digest, image);
      await pushManifest(repository, tag, index);
    },
    blobPath: (digest) =>
      join(
        dir,
        "data/docker/registry/v2/blobs/sha256",
        digest.slice(7, 9),
        digest.slice(7),
        "data",
      ),
    blobFetches: (digest) =>
      log.split("\n").filter((line) =>
        line.includes(`"GET /v2/`) &&
        (line.includes(`/blobs/${digest} `) || line.includes(`/blobs/${digest}?`))
      ).length,
    tokensIssued: () => tokens?.issued ?? 0,
    caFile,
    identityToken: (user) => `refresh-token-of-${user}`,
    registryToken: (repository) => tokens!.mint(repository, ["pull"]),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

interface TokenService {
  host: string;
  certPem: string;
  issued: number;
  /** A token granting `actions` (default pull and push) on `repository`. */
  mint(repository: string, actions?: string[]): Promise<string>;
  close(): Promise<void>;
}

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

function encodeBase64(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

/**
 * A token service as Docker Hub's: `GET /token?service=&scope=` with basic credentials (or
 * none) answers `{token, expires_in, issued_at}`; wrong credentials get 401.
 */
async function startTokenService(
  users: Record<string, string>,
  lifetimeS: number,
): Promise<TokenService> {
  const keys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=pve-cri test token issuer",
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: algorithm,
  });
  const der = encodeBase64(new Uint8Array(cert.rawData));
  const b64url = (bytes: Uint8Array) =>
    encodeBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  const json64 = (value: unknown) => b64url(new TextEncoder().encode(JSON.stringify(value)));
  const sign = async (subject: string, access: unknown[]) => {
    const now = Math.floor(Date.now() / 1000);
    const header = json64({ typ: "JWT", alg: "ES256", x5c: [der] });
    const claims = json64({
      iss: "pve-cri-test-issuer",
      sub: subject,
      aud: "pve-cri-test",
      exp: now + lifetimeS,
      nbf: now - 60,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    });
    const signature = new Uint8Array(
      await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        keys.privateKey,
        new TextEncoder().encode(`${header}.${claims}`),
      ),
    );
    return `${header}.${claims}.${b64url(signature)}`;
  };
  const state = { issued: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const authorization = request.headers.get("authorization");
    let subject = "";
    let scopes = url.searchParams.getAll("scope");
    if (request.method === "POST") {
      // OAuth2: an identity (refresh) token for an access token, as docker login's tokens work.
      const form = new URLSearchParams(await request.text());
      const refresh = form.get("refresh_token") ?? "";
      const user = refresh.replace(/^refresh-token-of-/, "");
      if (form.get("grant_type") !== "refresh_token" || !(user in users) || user === refresh) {
        return new Response("{}", { status: 401 });
      }
      subject = user;
      scopes = form.getAll("scope");
      state.issued++;
      const access = scopes.map((scope) => {
        const [type, name, actions] = scope.split(":");
        return { type, name, actions: (actions ?? "").split(",") };
      });
      return Response.json({ access_token: await sign(subject, access), expires_in: lifetimeS });
    } else if (authorization !== null) {
      const [user, password] = atob(authorization.replace(/^Basic /, "")).split(":");
      if (users[user ?? ""] !== password) return new Response("{}", { status: 401 });
      subject = user!;
    }
    const access = scopes.map((scope) => {
      const [type, name, actions] = scope.split(":");
      // Anonymous callers get a token that grants nothing, as Docker Hub gives for private repos.
      return { type, name, actions: subject === "" ? [] : (actions ?? "").split(",") };
    });
    state.issued++;
    return Response.json({
      token: await sign(subject, access),
      expires_in: lifetimeS,
      issued_at: new Date().toISOString(),
    });
  });
  const port = (server.addr as Deno.NetAddr).port;
  return {
    host: `127.0.0.1:${port}`,
    certPem: cert.toString("pem"),
    get issued() {
      return state.issued;
    },
    mint: (repository, actions = ["pull", "push"]) =>
      sign("pusher", [{ type: "repository", name: repository, actions }]),
    close: () => server.shutdown(),
  };
}
