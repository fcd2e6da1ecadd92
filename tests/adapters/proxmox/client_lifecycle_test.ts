import assert from "node:assert/strict";
import {
  PveAlreadyExistsError,
  PveAlreadyRunningError,
  PveConfigChangedError,
  PveContainerRunningError,
  PveLockedError,
  PveNotFoundError,
  PveNotRunningError,
  PveTaskFailedError,
  PveTimeoutError,
} from "../../../adapters/proxmox/mod.ts";
import { MemoryDriver } from "../../../adapters/proxmox/sim/mod.ts";
import { defaultPolling, nextPollInterval } from "../../../adapters/proxmox/tasks.ts";
import { settle, testEnv } from "./_support.ts";

Deno.test("Client creates, starts, stops and destroys a CT through the simulator over HTTPS", async () => {
  await using env = await testEnv();
  const client = env.client();
  const ostemplate = env.template();
  const upid = await client.createCt({
    vmid: 100,
    ostemplate,
    hostname: "web-1",
    memory: 256,
    swap: 0,
    cores: 2,
    cpulimit: 0.5,
    cpuunits: 200,
    net: ["name=eth0,bridge=vmbr0,ip=dhcp"],
    rootfs: "local-lvm:2",
    unprivileged: true,
    features: "nesting=1",
    tags: ["pve-cri", "sandbox-abc"],
    description: "pod default/web",
    entrypoint: "/bin/sh -c 'sleep 1000'",
    env: ["A=1", "B=two words"],
    cmode: "console",
    ostype: "debian",
  });
  assert.equal(await settle(client, upid), "OK");
  const config = await client.ctConfig({ vmid: 100 });
  assert.equal(config.hostname, "web-1");
  assert.equal(config.memory, 256);
  assert.equal(config.cpulimit, "0.5");
  assert.equal(config.tags, "pve-cri;sandbox-abc");
  assert.equal(config.env, "A=1\0B=two words");
  assert.equal(config.lock, undefined);
  assert.match(config.rootfs ?? "", /^local-lvm:vm-100-disk-0,size=2G$/);
  assert.match(String(config.net0), /hwaddr=BC:24:11:/);

  assert.equal(await settle(client, client.startCt({ vmid: 100 })), "OK");
  const running = await client.ctStatus({ vmid: 100 });
  assert.equal(running.status, "running");
  assert.equal(typeof running.pid, "number");
  assert.equal(await settle(client, client.stopCt({ vmid: 100 })), "OK");
  assert.equal((await client.ctStatus({ vmid: 100 })).status, "stopped");
  assert.equal(await settle(client, client.destroyCt({ vmid: 100, purge: true })), "OK");
  await assert.rejects(client.ctStatus({ vmid: 100 }), PveNotFoundError);
  assert.deepEqual(await client.listStorageContent({ storage: "local-lvm" }), []);
});

Deno.test("A CT being created carries lock: create until its task ends", async () => {
  await using env = await testEnv({
    faults: [{ method: "POST", path: "/nodes/*/lxc", taskDelayMs: 150 }],
  });
  const client = env.client();
  const upid = await client.createCt({ vmid: 101, ostemplate: env.template() });
  const during = await client.ctStatus({ vmid: 101 });
  assert.equal(during.lock, "create");
  assert.equal(during.status, "stopped");
  assert.equal((await client.taskStatus(upid)).status, "running");
  await client.waitForTask(upid);
  assert.equal((await client.ctStatus({ vmid: 101 })).lock, undefined);
});

Deno.test("createCtWithNextId moves on to the next vmid when a concurrent create took it", async () => {
  await using env = await testEnv();
  const client = env.client();
  const ostemplate = env.template();
  const [a, b] = await Promise.all([
    client.createCtWithNextId({ ostemplate }),
    client.createCtWithNextId({ ostemplate }),
  ]);
  assert.deepEqual([a.vmid, b.vmid].sort(), [100, 101]);
  const creates = env.requests.filter((r) => r.method === "POST" && r.path === "/nodes/pve1/lxc");
  assert.equal(creates.length, 3, "one create lost the race and was sent again with a new vmid");
  assert.ok(creates.some((r) => r.status === 500));
});

Deno.test("Client maps 'CT 100 already running' to PveAlreadyRunningError", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template(), start: true }));
  const error = await client.startCt({ vmid: 100 }).catch((e) => e);
  assert.ok(error instanceof PveAlreadyRunningError);
  assert.equal(error.code, "FailedPrecondition");
  assert.equal(error.details.pveMessage, "CT 100 already running");
});

Deno.test("Client maps 'CT 100 not running' to PveNotRunningError for stop and shutdown", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const stop = await client.stopCt({ vmid: 100 }).catch((e) => e);
  assert.ok(stop instanceof PveNotRunningError);
  assert.equal(stop.details.pveMessage, "CT 100 not running");
  await assert.rejects(client.shutdownCt({ vmid: 100 }), PveNotRunningError);
});

Deno.test("Destroying a running CT needs force: without it PveContainerRunningError", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template(), start: true }));
  const error = await client.destroyCt({ vmid: 100 }).catch((e) => e);
  assert.ok(error instanceof PveContainerRunningError);
  assert.equal(error.details.pveMessage, "unable to destroy CT 100 - container is running");
  assert.equal(await settle(client, client.destroyCt({ vmid: 100, force: true })), "OK");
  assert.deepEqual(await client.listCts(), []);
});

Deno.test("A locked CT refuses changes with PveLockedError carrying the lock kind", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const response = await fetch(`${env.sim.url}/_sim/locks`, {
    method: "POST",
    headers: { authorization: `PVEAPIToken=${env.sim.token.tokenid}=${env.sim.token.secret}` },
    body: JSON.stringify({ vmid: 100, lock: "backup" }),
    client: Deno.createHttpClient({ caCerts: [env.sim.caPem] }),
  });
  await response.body?.cancel();
  const put = await client.updateCtConfig({ vmid: 100, set: { memory: 64 } }).catch((e) => e);
  assert.ok(put instanceof PveLockedError);
  assert.equal(put.lock, "backup");
  assert.equal(put.details.pveMessage, "CT is locked (backup)");
  // start checks the lock inside its task, as PVE does: the task fails.
  const upid = await client.startCt({ vmid: 100 });
  const failed = await client.waitForTask(upid).catch((e) => e);
  assert.ok(failed instanceof PveLockedError);
  assert.equal(failed.lock, "backup");
  assert.equal(failed.details.upid, upid);
});

Deno.test("Creating an existing vmid fails with PveAlreadyExistsError naming the node", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const error = await client.createCt({ vmid: 100, ostemplate: env.template() }).catch((e) => e);
  assert.ok(error instanceof PveAlreadyExistsError);
  assert.equal(error.details.pveMessage, "CT 100 already exists on node 'pve1'");
});

Deno.test("Operations on a missing CT fail with PveNotFoundError", async () => {
  await using env = await testEnv();
  const client = env.client();
  const error = await client.ctConfig({ vmid: 4242 }).catch((e) => e);
  assert.ok(error instanceof PveNotFoundError);
  assert.equal(
    error.details.pveMessage,
    "Configuration file 'nodes/pve1/lxc/4242.conf' does not exist",
  );
  await assert.rejects(client.startCt({ vmid: 4242 }), PveNotFoundError);
  await assert.rejects(client.destroyCt({ vmid: 4242 }), PveNotFoundError);
});

Deno.test("PUT config sets entrypoint, env, tags and description; a stale digest is refused", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template(), tags: ["old"] }));
  const before = await client.ctConfig({ vmid: 100 });
  await client.updateCtConfig({
    vmid: 100,
    digest: before.digest,
    set: {
      entrypoint: "/app/server --port 8080",
      env: ["PATH=/usr/bin", "TOKEN=x=y"],
      tags: ["pve-cri", "ctr-1"],
      description: "line one\nline two",
      memory: 128,
    },
    delete: ["swap"],
  });
  const after = await client.ctConfig({ vmid: 100 });
  assert.equal(after.entrypoint, "/app/server --port 8080");
  assert.equal(after.env, "PATH=/usr/bin\0TOKEN=x=y");
  assert.equal(after.tags, "pve-cri;ctr-1");
  assert.equal(after.description, "line one\nline two");
  assert.equal(after.memory, 128);
  assert.equal(after.swap, undefined);
  assert.notEqual(after.digest, before.digest);
  const stale = await client.updateCtConfig({
    vmid: 100,
    digest: before.digest,
    set: { memory: 64 },
  })
    .catch((e) => e);
  assert.ok(stale instanceof PveConfigChangedError);
  assert.equal(stale.code, "Aborted");
});

Deno.test("Shutdown fails with 'container did not stop' when the CT ignores it; forceStop stops it", async () => {
  await using env = await testEnv({});
  await env.sim.close();
  await env.restart({
    driver: new MemoryDriver({ dir: `${env.dir}/driver`, ignoresShutdown: () => true }),
  });
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template(), start: true }));
  const failed = await client.waitForTask(await client.shutdownCt({ vmid: 100, timeout: 1 }))
    .catch((e) => e);
  assert.ok(failed instanceof PveTaskFailedError);
  assert.equal(failed.exitstatus, "container did not stop");
  assert.deepEqual(failed.logTail.at(-1), "TASK ERROR: container did not stop");
  assert.equal((await client.ctStatus({ vmid: 100 })).status, "running");
  await settle(client, client.shutdownCt({ vmid: 100, timeout: 1, forceStop: true }));
  assert.equal((await client.ctStatus({ vmid: 100 })).status, "stopped");
});

Deno.test("listCts and clusterResources report CTs with status, lock and tags", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(
    client,
    client.createCt({ vmid: 100, ostemplate: env.template(), tags: ["a"], start: true }),
  );
  await settle(client, client.createCt({ vmid: 101, ostemplate: env.template() }));
  const list = await client.listCts();
  assert.deepEqual(list.map((c) => [c.vmid, c.status, c.tags]), [[100, "running", "a"], [
    101,
    "stopped",
    undefined,
  ]]);
  const vms = await client.clusterResources("vm");
  assert.deepEqual(vms.map((r) => r.id), ["lxc/100", "lxc/101"]);
  assert.ok(vms.every((r) => r.node === "pve1" && r.type === "lxc"));
  const all = await client.clusterResources();
  assert.ok(all.some((r) => r.id === "node/pve1"));
  assert.ok(all.some((r) => r.id === "storage/pve1/local"));
});

Deno.test("A failed task's error carries the last lines of its log", async () => {
  await using env = await testEnv({
    faults: [{
      method: "POST",
      path: "/nodes/*/lxc/*/status/start",
      failTask: "startup for container '100' failed",
    }],
  });
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const error = await client.waitForTask(await client.startCt({ vmid: 100 })).catch((e) => e);
  assert.ok(error instanceof PveTaskFailedError);
  assert.equal(error.exitstatus, "startup for container '100' failed");
  assert.deepEqual(error.logTail, ["TASK ERROR: startup for container '100' failed"]);
  assert.match(error.message, /TASK ERROR: startup for container '100' failed/);
});

Deno.test("A task ending with WARNINGS: 2 counts as success", async () => {
  await using env = await testEnv({
    faults: [{ method: "POST", path: "/nodes/*/lxc", taskWarnings: 2 }],
  });
  const client = env.client();
  const status = await client.waitForTask(
    await client.createCt({ vmid: 100, ostemplate: env.template() }),
  );
  assert.equal(status.exitstatus, "WARNINGS: 2");
  const log = await client.taskLog(status.upid, { start: 0, limit: 0 });
  assert.equal(log.at(-1)?.t, "TASK WARNINGS: 2");
});

Deno.test("waitForTask gives up with PveTimeoutError while the task runs on", async () => {
  await using env = await testEnv({
    faults: [{ method: "POST", path: "/nodes/*/lxc", taskDelayMs: 400 }],
  });
  const client = env.client();
  const upid = await client.createCt({ vmid: 100, ostemplate: env.template() });
  await assert.rejects(client.waitForTask(upid, { timeoutMs: 50 }), PveTimeoutError);
  assert.equal((await client.waitForTask(upid)).exitstatus, "OK");
});

Deno.test("task polling: intervals double from 1 ms, held at 4 ms for a task's first 100 ms, then up to 1 s", () => {
  const intervals: number[] = [];
  let elapsed = 0;
  for (let interval = defaultPolling.minIntervalMs; elapsed < 5000;) {
    intervals.push(interval);
    elapsed += interval;
    interval = nextPollInterval(interval, elapsed, defaultPolling);
  }
  const brisk = intervals.filter((_, i) => intervals.slice(0, i).reduce((a, b) => a + b, 0) < 100);
  assert.deepEqual(brisk.slice(0, 4), [1, 2, 4, 4], "no 8 ms gap while a task is young");
  assert.ok(brisk.every((ms) => ms <= 4));
  assert.equal(Math.max(...intervals), 1000, "long tasks are polled once a second");
  // A task that ends at 16 ms is seen by 20 ms, not at 31 as doubling alone would.
  let at = 0;
  for (const ms of intervals) {
    if (at >= 16) break;
    at += ms;
  }
  assert.ok(at <= 20, `seen at ${at} ms`);
});

Deno.test("A create from a missing template fails its task and frees the vmid", async () => {
  await using env = await testEnv();
  const client = env.client();
  const error = await client.waitForTask(
    await client.createCt({ vmid: 100, ostemplate: "local:vztmpl/nope.tar.zst" }),
  ).catch((e) => e);
  assert.ok(error instanceof PveTaskFailedError);
  assert.equal(
    error.exitstatus,
    "unable to create CT 100 - volume 'local:vztmpl/nope.tar.zst' does not exist",
  );
  await assert.rejects(client.ctStatus({ vmid: 100 }), PveNotFoundError);
  assert.equal(await client.nextVmid(), 100);
});
