import assert from "node:assert/strict";
import {
  PveLockedError,
  PveServerError,
  PveTimeoutError,
  PveTransportError,
  PveUnreachableError,
} from "../../../adapters/proxmox/mod.ts";
import { Logger } from "../../../lib/log.ts";
import { until } from "../../_support/until.ts";
import { settle, testEnv } from "./_support.ts";

const countOf = (
  env: { requests: { method: string; path: string }[] },
  method: string,
  path: RegExp,
) => env.requests.filter((r) => r.method === method && path.test(r.path)).length;

Deno.test("A read is retried after a dropped connection", async () => {
  await using env = await testEnv({
    faults: [{ method: "GET", path: "/version", drop: "before", times: 2 }],
  });
  const client = env.client({ readAttempts: 3 });
  assert.equal((await client.version()).release, "9.1");
});

Deno.test("Reads give up after their retry bound with PveTransportError", async () => {
  await using env = await testEnv({
    faults: [{ method: "GET", path: "/version", drop: "before" }],
  });
  const client = env.client({ readAttempts: 3 });
  const error = await client.version().catch((e) => e);
  assert.ok(error instanceof PveTransportError);
  assert.equal(error.code, "Unavailable");
  assert.equal(env.sim.faults.list()[0]?.rule.path, "/version");
});

Deno.test("A read is retried on a proxy's 503 but not on a handler's 500", async () => {
  await using env = await testEnv({
    faults: [{
      method: "GET",
      path: "/cluster/nextid",
      status: 503,
      message: "Service Unavailable",
      times: 1,
    }],
  });
  const client = env.client();
  assert.equal(await client.nextVmid(), 100);
  env.sim.faults.add({
    method: "GET",
    path: "/cluster/nextid",
    status: 500,
    message: "boom",
    times: 1,
  });
  await assert.rejects(client.nextVmid(), PveServerError);
  assert.equal(await client.nextVmid(), 100);
});

Deno.test("A create whose answer was lost after the node acted is not sent again: its task is found", async () => {
  await using env = await testEnv({
    faults: [{ method: "POST", path: "/nodes/*/lxc", drop: "after", times: 1 }],
  });
  const client = env.client();
  const upid = await client.createCt({ vmid: 100, ostemplate: env.template() });
  assert.match(upid, /:vzcreate:100:/);
  assert.equal(await settle(client, upid), "OK");
  assert.equal(
    countOf(env, "POST", /^\/nodes\/pve1\/lxc$/),
    0,
    "the dropped create is not recorded as answered",
  );
  assert.equal(countOf(env, "GET", /^\/nodes\/pve1\/tasks$/), 1);
  assert.equal((await client.listCts()).length, 1);
});

Deno.test("A create lost while its task still runs returns the running task to wait for", async () => {
  await using env = await testEnv({
    faults: [{ method: "POST", path: "/nodes/*/lxc", drop: "after", taskDelayMs: 100, times: 1 }],
  });
  const client = env.client();
  const upid = await client.createCt({ vmid: 100, ostemplate: env.template() });
  assert.equal((await client.taskStatus(upid)).status, "running");
  assert.equal(await settle(client, upid), "OK");
});

Deno.test("A start that never reached the node is sent again", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  env.sim.faults.add({
    method: "POST",
    path: "/nodes/*/lxc/*/status/start",
    drop: "before",
    times: 1,
  });
  const upid = await client.startCt({ vmid: 100 });
  assert.equal(await settle(client, upid), "OK");
  assert.equal((await client.ctStatus({ vmid: 100 })).status, "running");
  assert.equal(countOf(env, "POST", /status\/start$/), 1, "one start was answered");
  assert.equal(countOf(env, "GET", /^\/nodes\/pve1\/tasks$/), 1, "the task list was checked first");
});

Deno.test("A lost start whose task still runs is waited for without further checks", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  env.sim.faults.add({
    method: "POST",
    path: "/nodes/*/lxc/*/status/start",
    drop: "after",
    taskDelayMs: 100,
    times: 1,
  });
  const upid = await client.startCt({ vmid: 100 });
  assert.match(upid, /:vzstart:100:/);
  assert.equal(countOf(env, "GET", /status\/current$/), 0, "a running task needs no state check");
  assert.equal(await settle(client, upid), "OK");
});

Deno.test("A lost stop whose task already finished is recognised by the CT's state", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template(), start: true }));
  env.sim.faults.add({
    method: "POST",
    path: "/nodes/*/lxc/*/status/stop",
    drop: "after",
    times: 1,
  });
  // The task list answers late: the stop task has long finished by then.
  env.sim.faults.add({ method: "GET", path: "/nodes/*/tasks", latencyMs: 30, times: 1 });
  const upid = await client.stopCt({ vmid: 100 });
  assert.match(upid, /:vzstop:100:/);
  assert.equal(countOf(env, "GET", /status\/current$/), 1, "the CT's state confirmed the stop");
  assert.equal(countOf(env, "POST", /status\/stop$/), 0, "the stop was not sent again");
  assert.equal((await client.ctStatus({ vmid: 100 })).status, "stopped");
});

Deno.test("A lost start matched only by an old finished task is sent again", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  await settle(client, client.startCt({ vmid: 100 }));
  await settle(client, client.stopCt({ vmid: 100 }));
  // The next start never arrives; the earlier vzstart task is in the list but the CT is stopped.
  env.sim.faults.add({
    method: "POST",
    path: "/nodes/*/lxc/*/status/start",
    drop: "before",
    times: 1,
  });
  await settle(client, client.startCt({ vmid: 100 }));
  assert.equal((await client.ctStatus({ vmid: 100 })).status, "running");
  assert.equal(countOf(env, "POST", /status\/start$/), 2);
});

Deno.test("A destroy whose answer was lost returns its vzdestroy task", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  env.sim.faults.add({ method: "DELETE", path: "/nodes/*/lxc/*", drop: "after", times: 1 });
  const upid = await client.destroyCt({ vmid: 100 });
  assert.match(upid, /:vzdestroy:100:/);
  assert.equal(await settle(client, upid), "OK");
  assert.deepEqual(await client.listCts(), []);
});

Deno.test("A config change whose answer was lost is checked in the config, not sent again", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const { digest } = await client.ctConfig({ vmid: 100 });
  env.sim.faults.add({ method: "PUT", path: "/nodes/*/lxc/*/config", drop: "after", times: 1 });
  await client.updateCtConfig({
    vmid: 100,
    digest,
    set: { memory: 96, tags: ["x"] },
    delete: ["swap"],
  });
  const config = await client.ctConfig({ vmid: 100 });
  assert.equal(config.memory, 96);
  assert.equal(config.swap, undefined);
  assert.equal(countOf(env, "PUT", /config$/), 0, "no second PUT (it would have hit the digest)");
});

Deno.test("A config change that never arrived is sent again", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  env.sim.faults.add({ method: "PUT", path: "/nodes/*/lxc/*/config", drop: "before", times: 1 });
  await client.updateCtConfig({ vmid: 100, set: { memory: 80 } });
  assert.equal((await client.ctConfig({ vmid: 100 })).memory, 80);
  assert.equal(countOf(env, "PUT", /config$/), 1);
});

Deno.test("A 502 answer to a write is treated as a lost answer and checked", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  env.sim.faults.add({
    method: "POST",
    path: "/nodes/*/lxc/*/status/start",
    status: 502,
    times: 1,
  });
  assert.equal(await settle(client, client.startCt({ vmid: 100 })), "OK");
  assert.equal(countOf(env, "GET", /^\/nodes\/pve1\/tasks$/), 1);
});

Deno.test("An injected 500 on a write surfaces once, without a retry", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  env.sim.faults.add({
    method: "POST",
    path: "/nodes/*/lxc/*/status/start",
    status: 500,
    message: "internal hiccup\nsecond line",
  });
  const error = await client.startCt({ vmid: 100 }).catch((e) => e);
  assert.ok(error instanceof PveServerError);
  assert.equal(error.details.pveMessage, "internal hiccup\nsecond line");
  assert.equal(countOf(env, "POST", /status\/start$/), 1);
});

Deno.test("Per-endpoint latency slows only the matching endpoint", async () => {
  await using env = await testEnv({
    faults: [{ method: "GET", path: "/cluster/nextid", latencyMs: 120 }],
  });
  const client = env.client();
  await client.version();
  // Sent together, the unslowed call is answered first; the slowed one not before its delay.
  const order: string[] = [];
  const started = performance.now();
  await Promise.all([
    client.nextVmid().then(() => order.push("nextid")),
    client.version().then(() => order.push("version")),
  ]);
  assert.deepEqual(order, ["version", "nextid"]);
  assert.ok(performance.now() - started >= 115);
});

Deno.test("A request that outlasts its timeout fails with PveTimeoutError", async () => {
  await using env = await testEnv({
    faults: [{ method: "GET", path: "/version", latencyMs: 300 }],
  });
  const client = env.client({ requestTimeoutMs: 80, readAttempts: 1 });
  await assert.rejects(client.version(), PveTimeoutError);
});

Deno.test("Config lock contention (flock timeout) is retried, then maps to PveLockedError with lock 'flock'", async () => {
  await using env = await testEnv();
  const client = env.client({ lockAttempts: 3, retryDelayMs: 1 });
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const config = /^\/nodes\/[^/]+\/lxc\/100\/config$/;
  env.sim.faults.add({ method: "PUT", path: "/nodes/*/lxc/*/config", lockTimeout: true, times: 1 });
  await client.updateCtConfig({ vmid: 100, set: { memory: 64 } });
  assert.equal((await client.ctConfig({ vmid: 100 })).memory, 64, "done on the second attempt");
  assert.equal(countOf(env, "PUT", config), 2);
  env.sim.faults.add({ method: "PUT", path: "/nodes/*/lxc/*/config", lockTimeout: true });
  const error = await client.updateCtConfig({ vmid: 100, set: { memory: 96 } }).catch((e) => e);
  assert.ok(error instanceof PveLockedError);
  assert.equal(error.lock, "flock");
  assert.equal(
    error.details.pveMessage,
    "can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout",
  );
  assert.equal(countOf(env, "PUT", config), 5, "three attempts, then the error");
});

Deno.test("A write that could not connect is sent once the node listens again, within a bound", async () => {
  await using env = await testEnv();
  const lines: string[] = [];
  const client = env.client({
    connectAttempts: 8,
    retryDelayMs: 20,
    logger: new Logger("debug", {}, { write: (line) => void lines.push(line) }),
  });
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const port = Number(new URL(env.sim.url).port);
  await env.sim.close();
  const update = client.updateCtConfig({ vmid: 100, set: { memory: 64 } });
  await until("a refused attempt", () => lines.some((l) => l.includes("unreachable")) || undefined);
  await env.restart({ port });
  await update;
  assert.equal((await client.ctConfig({ vmid: 100 })).memory, 64);
  const nowhere = env.client({ connectAttempts: 3, retryDelayMs: 1, url: "https://127.0.0.1:1" });
  const error = await nowhere.updateCtConfig({ vmid: 100, set: { memory: 96 } }).catch((e) => e);
  assert.ok(error instanceof PveUnreachableError, "refused three times: the error");
  assert.equal(error.code, "Unavailable");
});

Deno.test("Faults can be set and cleared through the control endpoint", async () => {
  await using env = await testEnv();
  const client = env.client();
  const http = Deno.createHttpClient({ caCerts: [env.sim.caPem] });
  const headers = { authorization: `PVEAPIToken=${env.sim.token.tokenid}=${env.sim.token.secret}` };
  const add = await fetch(`${env.sim.url}/_sim/faults`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      method: "GET",
      path: "/version",
      status: 500,
      message: "down for test",
    }),
    client: http,
  });
  assert.equal(add.status, 200);
  assert.equal(typeof (await add.json()).data.id, "number");
  await assert.rejects(client.version(), /down for test/);
  const unauthenticated = await fetch(`${env.sim.url}/_sim/faults`, {
    method: "DELETE",
    client: http,
  });
  assert.equal(unauthenticated.status, 401);
  await unauthenticated.body?.cancel();
  const clear = await fetch(`${env.sim.url}/_sim/faults`, {
    method: "DELETE",
    headers,
    client: http,
  });
  await clear.body?.cancel();
  assert.equal((await client.version()).release, "9.1");
  http.close();
});

Deno.test("A create that timed out is checked and sent once more; the late original fails harmlessly", async () => {
  await using env = await testEnv();
  const client = env.client({ requestTimeoutMs: 100 });
  env.sim.faults.add({ method: "POST", path: "/nodes/*/lxc", latencyMs: 250, times: 1 });
  const upid = await client.createCt({ vmid: 100, ostemplate: env.template() });
  assert.equal(await settle(client, upid), "OK");
  await env.sim.idle();
  await new Promise((resolve) => setTimeout(resolve, 250)); // the delayed original arrives
  const creates = env.requests.filter((r) => r.method === "POST" && r.path === "/nodes/pve1/lxc");
  assert.deepEqual(
    creates.map((r) => r.status).sort(),
    [200, 500],
    "one created, the late one refused",
  );
  assert.equal((await client.listCts()).length, 1);
});
