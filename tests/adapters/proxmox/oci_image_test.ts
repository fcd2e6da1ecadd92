import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { skopeoPuller } from "../../../adapters/proxmox/sim/mod.ts";
import { buildImage } from "../../_support/oci_images.ts";
import { registryMissing, skopeoMissing, startRegistry } from "../../_support/registry.ts";
import { settle, testEnv } from "./_support.ts";
import { concatBytes } from "../../../lib/bytes.ts";

/** A minimal ustar archive of the given files. */
function tar(files: Record<string, Uint8Array>): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const [name, data] of Object.entries(files)) {
    const header = new Uint8Array(512);
    const put = (text: string, offset: number) =>
      header.set(new TextEncoder().encode(text), offset);
    put(name, 0);
    put("0000644\0", 100);
    put("0000000\0", 108);
    put("0000000\0", 116);
    put(data.length.toString(8).padStart(11, "0") + "\0", 124);
    put("00000000000\0", 136);
    put("        ", 148);
    put("0", 156);
    put("ustar\0" + "00", 257);
    const sum = header.reduce((a, b) => a + b, 0);
    put(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    chunks.push(header, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  chunks.push(new Uint8Array(1024));
  return concatBytes(chunks);
}

/** An OCI image layout archive (no layers) with this image config. */
function ociArchive(config: Record<string, unknown>): Uint8Array {
  const blob = (value: unknown) => {
    const data = new TextEncoder().encode(JSON.stringify(value));
    return { data, digest: `sha256:${createHash("sha256").update(data).digest("hex")}` };
  };
  const configBlob = blob({
    architecture: "amd64",
    os: "linux",
    config,
    rootfs: { type: "layers", diff_ids: [] },
  });
  const manifest = blob({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configBlob.digest,
      size: configBlob.data.length,
    },
    layers: [],
  });
  const index = {
    schemaVersion: 2,
    manifests: [{
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: manifest.digest,
      size: manifest.data.length,
    }],
  };
  const path = (digest: string) => `blobs/${digest.replace(":", "/")}`;
  return tar({
    "oci-layout": new TextEncoder().encode('{"imageLayoutVersion":"1.0.0"}'),
    "index.json": new TextEncoder().encode(JSON.stringify(index)),
    [path(manifest.digest)]: manifest.data,
    [path(configBlob.digest)]: configBlob.data,
  });
}

Deno.test("A CT created from an OCI archive takes the image's command, env, user, cwd and stop signal", async () => {
  await using env = await testEnv();
  const client = env.client();
  const archive = ociArchive({
    Entrypoint: ["/usr/bin/server"],
    Cmd: ["--listen", ":8080", "two words"],
    Env: ["PATH=/usr/bin", "MODE=prod"],
    User: "1000:1000",
    WorkingDir: "/srv",
    StopSignal: "SIGINT",
  });
  await settle(
    client,
    client.uploadToStorage({ storage: "local", filename: "app.tar", data: archive }),
  );
  await settle(
    client,
    client.createCt({
      vmid: 100,
      ostemplate: "local:vztmpl/app.tar",
      entrypoint: "/ignored/by/pve",
      net: ["name=eth0,bridge=vmbr0"],
    }),
  );
  const config = await client.ctConfig({ vmid: 100 });
  assert.equal(
    config.entrypoint,
    "/usr/bin/server --listen :8080 'two words'",
    "PVE 9.1 overwrites a create-time entrypoint",
  );
  assert.equal(config.env, "PATH=/usr/bin\0MODE=prod");
  assert.equal(config.cmode, "console");
  assert.equal(config.ostype, "unmanaged");
  assert.match(String(config.net0), /host-managed=1/);
  assert.deepEqual(config.lxc, [
    ["lxc.init.uid", "1000"],
    ["lxc.init.gid", "1000"],
    ["lxc.init.cwd", "/srv"],
    ["lxc.signal.halt", "SIGINT"],
  ]);
  // so the runtime sets command and env with PUT config after create, as DESIGN §2 says
  await client.updateCtConfig({
    vmid: 100,
    set: { entrypoint: "/bin/sh -c 'echo hi'", env: ["A=1"] },
  });
  const updated = await client.ctConfig({ vmid: 100 });
  assert.equal(updated.entrypoint, "/bin/sh -c 'echo hi'");
  assert.equal(updated.env, "A=1");
});

const pullMissing = registryMissing() ?? skopeoMissing();

Deno.test({
  name:
    `oci-registry-pull copies a real registry's image with skopeo, as PVE 9.1 does; a system template keeps the given entrypoint${
      pullMissing === undefined ? "" : ` (skipped: ${pullMissing})`
    }`,
  ignore: pullMissing !== undefined,
  async fn() {
    await using registry = await startRegistry();
    const image = buildImage({
      layers: [{ files: { "docker-entrypoint.sh": { data: "#!/bin/sh\n", mode: 0o755 } } }],
      config: { Entrypoint: ["/docker-entrypoint.sh"], Cmd: ["nginx", "-g", "daemon off;"] },
    });
    await registry.push("library/nginx", "1.27", image);
    // What /etc/containers/registries.conf says on a node that uses a plain-HTTP registry.
    const conf = `${registry.dir}/registries.conf`;
    Deno.writeTextFileSync(conf, `[[registry]]\nlocation = "${registry.host}"\ninsecure = true\n`);
    await using env = await testEnv({
      puller: skopeoPuller({ registriesConf: conf }),
    });
    const client = env.client();
    const pulled = await client.pullOciImage({
      storage: "local",
      reference: `${registry.host}/library/nginx:1.27`,
    });
    assert.equal(pulled.volid, "local:vztmpl/nginx_1.27.tar", "PVE names the file after the repo");
    await settle(client, pulled.upid);
    await settle(client, client.createCt({ vmid: 100, ostemplate: pulled.volid }));
    assert.equal(
      (await client.ctConfig({ vmid: 100 })).entrypoint,
      "/docker-entrypoint.sh nginx -g 'daemon off;'",
    );
    await assert.rejects(
      client.pullOciImage({ storage: "local", reference: `${registry.host}/library/nginx:1.27` }),
      /refusing to override existing file 'nginx_1.27.tar'/,
    );
    await settle(
      client,
      client.createCt({ vmid: 101, ostemplate: env.template(), entrypoint: "/sbin/init quiet" }),
    );
    const system = await client.ctConfig({ vmid: 101 });
    assert.equal(system.entrypoint, "/sbin/init quiet");
    assert.equal(system.cmode, undefined);
    assert.equal(system.ostype, "debian");
  },
});

Deno.test("Without skopeo, oci-registry-pull fails before a task starts, with PVE's message", async () => {
  await using env = await testEnv({ puller: skopeoPuller({ binary: "/nonexistent/skopeo" }) });
  await assert.rejects(
    env.client().pullOciImage({ storage: "local", reference: "docker.io/library/busybox:1.36" }),
    /Install 'skopeo' to pull OCI images from registries\./,
  );
});
