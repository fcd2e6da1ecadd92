import assert from "node:assert/strict";
import { rawRequest } from "./client_auth_test.ts";
import { testEnv } from "./_support.ts";

type Env = Awaited<ReturnType<typeof testEnv>>;

function api(env: Env, method: string, path: string, body?: string) {
  return rawRequest(env.sim.url, env.sim.caPem, {
    method,
    path: `/api2/json${path}`,
    headers: { authorization: `PVEAPIToken=${env.sim.token.tokenid}=${env.sim.token.secret}` },
    ...(body === undefined ? {} : { body }),
  });
}

Deno.test("Unknown paths and methods answer 501 'Method … not implemented'", async () => {
  await using env = await testEnv();
  const path = await api(env, "GET", "/nodes/pve1/lxc/100/exec");
  assert.equal(path.status, 501);
  assert.equal(path.reason, "Method 'GET /api2/json/nodes/pve1/lxc/100/exec' not implemented");
  const method = await api(env, "DELETE", "/version");
  assert.equal(method.status, 501);
  const format = await rawRequest(env.sim.url, env.sim.caPem, {
    method: "GET",
    path: "/api2/yaml/version",
  });
  assert.equal(format.status, 501);
  assert.equal(format.reason, "no such uri");
});

Deno.test("A 500 carries the first line of the message as reason phrase and the whole message in the body", async () => {
  await using env = await testEnv({
    faults: [{ path: "/version", status: 500, message: "first line\nsecond line" }],
  });
  const answer = await api(env, "GET", "/version");
  assert.equal(answer.status, 500);
  assert.equal(answer.reason, "first line");
  assert.deepEqual(JSON.parse(answer.body), { data: null, message: "first line\nsecond line\n" });
  assert.equal(answer.headers.connection, "close", "error answers close the connection");
  const missing = await api(env, "GET", "/nodes/pve1/lxc/123/status/current");
  assert.equal(missing.reason, "Configuration file 'nodes/pve1/lxc/123.conf' does not exist");
});

Deno.test("Parameter errors name every bad key with PVE's texts", async () => {
  await using env = await testEnv();
  const body = [
    "vmid=99",
    "memory=abc",
    "cmode=serial",
    "hostname=-bad-",
    "net0=" + encodeURIComponent("name=eth0,bogus=1"),
    "start=true",
    "tags=" + encodeURIComponent("ok;bad!"),
    "entrypoint=" + encodeURIComponent("\x01"),
    "wat=1",
  ].join("&");
  const answer = await api(env, "POST", "/nodes/pve1/lxc", body);
  assert.equal(answer.status, 400);
  assert.equal(answer.reason, "Parameter verification failed.");
  const { errors } = JSON.parse(answer.body);
  assert.deepEqual(errors, {
    vmid: "value must have a minimum value of 100",
    memory: "type check ('integer') failed - got 'abc'",
    cmode: "value 'serial' does not have a value in the enumeration 'shell, console, tty'",
    hostname: "invalid format - value does not look like a valid DNS name",
    net0: "invalid format - invalid key in comma-separated list property: bogus",
    start: "type check ('boolean') failed - got 'true'",
    tags: "invalid format - invalid tag 'bad!'",
    entrypoint: "value does not match the regex pattern",
    wat: "property is not defined in schema and the schema does not allow additional properties",
    ostemplate: "property is missing and it is not optional",
  });
});

Deno.test("JSON bodies may carry true/false; path parameters may not conflict with the body", async () => {
  await using env = await testEnv();
  env.template();
  const json = await rawRequest(env.sim.url, env.sim.caPem, {
    method: "POST",
    path: "/api2/json/nodes/pve1/lxc",
    headers: {
      authorization: `PVEAPIToken=${env.sim.token.tokenid}=${env.sim.token.secret}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({
      vmid: 100,
      ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
      start: true,
    }),
  });
  assert.equal(json.status, 200);
  assert.match(
    JSON.parse(json.body).data,
    /^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:vzcreate:100:root@pam!pve-cri:$/,
  );
  const conflict = await api(env, "PUT", "/nodes/pve1/lxc/100/config", "vmid=101&memory=64");
  assert.equal(conflict.status, 400);
  assert.deepEqual(JSON.parse(conflict.body).errors, {
    vmid: "duplicate parameter (already defined in URI) with conflicting values!",
  });
});

Deno.test("A GET or DELETE with a body is refused with 501", async () => {
  await using env = await testEnv();
  const answer = await api(env, "DELETE", "/nodes/pve1/lxc/100", "force=1");
  assert.equal(answer.status, 501);
  assert.equal(answer.reason, "Unexpected content for method 'DELETE'");
});

Deno.test("An unknown node name fails as PVE's hostname lookup does", async () => {
  await using env = await testEnv();
  const answer = await api(env, "GET", "/nodes/pve9/lxc");
  assert.equal(answer.status, 500);
  assert.match(answer.reason, /^hostname lookup 'pve9' failed/);
});

Deno.test("nextid is a JSON string; a taken vmid answers 400 'VM N already exists'", async () => {
  await using env = await testEnv();
  const client = env.client();
  assert.equal(JSON.parse((await api(env, "GET", "/cluster/nextid")).body).data, "100");
  await client.waitForTask(await client.createCt({ vmid: 100, ostemplate: env.template() }));
  assert.equal(JSON.parse((await api(env, "GET", "/cluster/nextid")).body).data, "101");
  const taken = await api(env, "GET", "/cluster/nextid?vmid=100");
  assert.equal(taken.status, 400);
  assert.deepEqual(JSON.parse(taken.body).errors, { vmid: "VM 100 already exists" });
});

Deno.test("Task status and log behave as on PVE", async () => {
  await using env = await testEnv();
  const client = env.client();
  const upid = await client.createCt({ vmid: 100, ostemplate: env.template() });
  const status = await client.waitForTask(upid);
  assert.deepEqual(
    {
      user: status.user,
      tokenid: status.tokenid,
      type: status.type,
      id: status.id,
      exitstatus: status.exitstatus,
    },
    { user: "root@pam", tokenid: "pve-cri", type: "vzcreate", id: "100", exitstatus: "OK" },
  );
  const log = JSON.parse(
    (await api(env, "GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log?start=0&limit=1`))
      .body,
  );
  assert.equal(log.data.length, 1);
  assert.equal(log.data[0].n, 1);
  assert.ok(log.total >= 2);
  const all = await client.taskLog(upid, { limit: 0 });
  assert.equal(all.at(-1)?.t, "TASK OK");
  const bad = await api(env, "GET", "/nodes/pve1/tasks/nonsense/status");
  assert.equal(bad.status, 400);
  assert.deepEqual(JSON.parse(bad.body).errors, { upid: "unable to parse worker upid" });
  const unknown = await api(
    env,
    "GET",
    `/nodes/pve1/tasks/${encodeURIComponent(upid.replace(":vzcreate:", ":vzstart:"))}/status`,
  );
  assert.deepEqual(JSON.parse(unknown.body).errors, { upid: "no such task" });
});

Deno.test("A running task can be stopped through DELETE tasks/{upid}", async () => {
  await using env = await testEnv({
    faults: [{ method: "POST", path: "/nodes/*/lxc", taskDelayMs: 200 }],
  });
  const client = env.client();
  const upid = await client.createCt({ vmid: 100, ostemplate: env.template() });
  const stop = await api(env, "DELETE", `/nodes/pve1/tasks/${encodeURIComponent(upid)}`);
  assert.equal(stop.status, 200);
  const error = await client.waitForTask(upid).catch((e) => e);
  assert.match(error.message, /received interrupt/);
});

Deno.test("The task list filters by vmid, type and source", async () => {
  await using env = await testEnv();
  const client = env.client();
  await client.waitForTask(
    await client.createCt({ vmid: 100, ostemplate: env.template(), start: true }),
  );
  await client.waitForTask(await client.createCt({ vmid: 101, ostemplate: env.template() }));
  await client.waitForTask(await client.stopCt({ vmid: 100 }));
  const list = async (query: string) =>
    JSON.parse((await api(env, "GET", `/nodes/pve1/tasks?${query}`)).body).data as {
      type: string;
      id: string;
      status?: string;
    }[];
  assert.deepEqual((await list("vmid=100")).map((t) => t.type), ["vzstop", "vzcreate"]);
  assert.deepEqual((await list("typefilter=vzcreate")).map((t) => t.id).sort(), ["100", "101"]);
  assert.ok((await list("source=archive")).every((t) => t.status === "OK"));
  assert.deepEqual(await list("source=active"), []);
});
