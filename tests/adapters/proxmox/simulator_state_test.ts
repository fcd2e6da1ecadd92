import assert from "node:assert/strict";
import { PveNotFoundError } from "../../../adapters/proxmox/mod.ts";
import { settle, testEnv } from "./_support.ts";

Deno.test("After a crash the restarted simulator finds its CTs, configs and tasks as they were", async () => {
  await using env = await testEnv();
  let client = env.client();
  await settle(
    client,
    client.createCt({ vmid: 100, ostemplate: env.template(), tags: ["keep"], start: true }),
  );
  const upid = await client.createCt({ vmid: 101, ostemplate: env.template() });
  await settle(client, upid);
  const pid = (await client.ctStatus({ vmid: 100 })).pid;
  client.close();
  await env.sim.crash();
  await env.restart();
  client = env.client();
  const running = await client.ctStatus({ vmid: 100 });
  assert.equal(running.status, "running", "a CT outlives the crash of whoever manages it");
  assert.equal(running.pid, pid);
  assert.equal((await client.ctConfig({ vmid: 100 })).tags, "keep");
  assert.equal((await client.taskStatus(upid)).exitstatus, "OK");
  assert.equal(await client.nextVmid(), 102);
  // the same token still works: the node keeps its users and tokens
  assert.equal((await client.version()).release, "9.1");
});

Deno.test("A task interrupted by a crash runs to completion after the restart", async () => {
  await using env = await testEnv({
    faults: [{ method: "POST", path: "/nodes/*/lxc", taskDelayMs: 300 }],
  });
  let client = env.client();
  const upid = await client.createCt({ vmid: 100, ostemplate: env.template(), start: true });
  assert.equal((await client.ctStatus({ vmid: 100 })).lock, "create");
  client.close();
  await env.sim.crash();
  await env.restart({ faults: [] });
  client = env.client();
  assert.equal(await settle(client, upid), "OK");
  const status = await client.ctStatus({ vmid: 100 });
  assert.equal(status.status, "running");
  assert.equal(status.lock, undefined);
});

Deno.test("Raw lxc.* lines follow Proxmox's whitelist: lxc.include is kept, lxc.namespace refused", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  env.sim.addRawConfigLine(100, "lxc.include", "/run/pve-cri/pods/abc/ns.conf");
  env.sim.addRawConfigLine(
    100,
    "lxc.mount.entry",
    "/var/lib/pve-cri/x etc/hosts none bind,create=file 0 0",
  );
  env.sim.addRawConfigLine(100, "lxc.cgroup2.memory.high", "100M");
  assert.throws(
    () => env.sim.addRawConfigLine(100, "lxc.namespace.share.net", "/proc/1/ns/net"),
    /^Error: vm 100 - unable to parse config: lxc.namespace.share.net: \/proc\/1\/ns\/net$/,
  );
  assert.throws(
    () => env.sim.addRawConfigLine(100, "lxc.rootfs.path", "/x"),
    /lxc.rootfs.path is not supported/,
  );
  // A line root wrote into the file by hand that PVE would not accept is dropped on reading.
  Deno.writeTextFileSync(env.sim.configPath(100), "lxc.namespace.clone: net\n", { append: true });
  const config = await client.ctConfig({ vmid: 100 });
  assert.deepEqual(config.lxc, [
    ["lxc.include", "/run/pve-cri/pods/abc/ns.conf"],
    ["lxc.mount.entry", "/var/lib/pve-cri/x etc/hosts none bind,create=file 0 0"],
    ["lxc.cgroup2.memory.high", "100M"],
  ]);
});

Deno.test("A config file edited on the node is seen at once, with a new digest", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const before = await client.ctConfig({ vmid: 100 });
  const text = Deno.readTextFileSync(env.sim.configPath(100));
  Deno.writeTextFileSync(env.sim.configPath(100), text.replace("memory: 512", "memory: 1024"));
  const after = await client.ctConfig({ vmid: 100 });
  assert.equal(after.memory, 1024);
  assert.notEqual(after.digest, before.digest);
});

Deno.test("OCI pulls land as normalize(reference).tar in vztmpl storage and are never overwritten", async () => {
  await using env = await testEnv();
  const client = env.client();
  const pulled = await client.pullOciImage({
    storage: "local",
    reference: "docker.io/library/alpine:3.20",
  });
  assert.equal(pulled.volid, "local:vztmpl/alpine_3.20.tar");
  assert.match(pulled.upid, /:ociregistrypull:alpine_3\.20\.tar:/);
  await settle(client, pulled.upid);
  const volumes = await client.listStorageContent({ storage: "local", content: "vztmpl" });
  assert.deepEqual(volumes.map((v) => [v.volid, v.format]), [[
    "local:vztmpl/alpine_3.20.tar",
    "tar",
  ]]);
  const again = await client.pullOciImage({
    storage: "local",
    reference: "registry.example:5000/alpine:3.20",
  })
    .catch((e) => e);
  assert.equal(again.details.pveMessage, "refusing to override existing file 'alpine_3.20.tar'");
  const named = await client.pullOciImage({
    storage: "local",
    reference: "registry.example:5000/alpine:3.20",
    filename: "other-alpine",
  });
  assert.equal(named.volid, "local:vztmpl/other-alpine.tar");
  await settle(client, named.upid);
  // a CT made from an OCI archive runs in console mode with host-managed NICs, as on PVE 9.1
  await settle(
    client,
    client.createCt({ vmid: 100, ostemplate: pulled.volid, net: ["name=eth0,bridge=vmbr0"] }),
  );
  const config = await client.ctConfig({ vmid: 100 });
  assert.equal(config.cmode, "console");
  assert.match(String(config.net0), /host-managed=1/);
  assert.equal(config.ostype, "unmanaged");
});

Deno.test("A digest-pinned reference is refused: PVE needs a tag", async () => {
  await using env = await testEnv();
  const client = env.client();
  const error = await client.pullOciImage({
    storage: "local",
    reference: "alpine@sha256:" + "a".repeat(64),
  })
    .catch((e) => e);
  assert.deepEqual(error.errors, { reference: "value does not match the regex pattern" });
});

Deno.test("Templates are uploaded, listed with their format and deleted", async () => {
  await using env = await testEnv();
  const client = env.client();
  const data = new TextEncoder().encode("a template archive");
  await settle(
    client,
    client.uploadToStorage({ storage: "local", filename: "my tmpl.tar.zst", data }),
  );
  const volumes = await client.listStorageContent({ storage: "local", content: "vztmpl" });
  assert.deepEqual(volumes.map((v) => [v.volid, v.format, v.size]), [[
    "local:vztmpl/my_tmpl.tar.zst",
    "tzst",
    data.length,
  ]]);
  const upid = await client.deleteVolume({ volid: "local:vztmpl/my_tmpl.tar.zst" });
  assert.ok(upid !== null);
  await settle(client, upid);
  assert.deepEqual(await client.listStorageContent({ storage: "local", content: "vztmpl" }), []);
  await assert.rejects(
    client.deleteVolume({ volid: "local:vztmpl/my_tmpl.tar.zst" }),
    PveNotFoundError,
  );
});

Deno.test("deleteVolume with a delay answers null once the deletion finished", async () => {
  await using env = await testEnv();
  const client = env.client();
  const volid = env.template("x.tar.gz");
  assert.equal(await client.deleteVolume({ volid, delay: 5 }), null);
});

Deno.test("A lost upload or pull is found through the task list, not repeated", async () => {
  await using env = await testEnv({
    faults: [
      { method: "POST", path: "/nodes/*/storage/*/oci-registry-pull", drop: "after", times: 1 },
      { method: "DELETE", path: "/nodes/*/storage/*/content/*", drop: "after", times: 1 },
    ],
  });
  const client = env.client();
  const pulled = await client.pullOciImage({ storage: "local", reference: "busybox:1.36" });
  assert.match(pulled.upid, /:ociregistrypull:busybox_1\.36\.tar:/);
  await settle(client, pulled.upid);
  const deleted = await client.deleteVolume({ volid: pulled.volid });
  assert.match(String(deleted), /:imgdel:/);
  assert.deepEqual(await client.listStorageContent({ storage: "local", content: "vztmpl" }), []);
});

Deno.test("Storage status lists the node's storages with their content types", async () => {
  await using env = await testEnv();
  const client = env.client();
  const resources = await client.clusterResources("storage");
  assert.deepEqual(resources.map((r) => r.storage), ["local", "local-lvm"]);
  await assert.rejects(client.listStorageContent({ storage: "nope" }), PveNotFoundError);
});
