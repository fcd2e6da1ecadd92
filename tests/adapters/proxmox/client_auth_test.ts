import assert from "node:assert/strict";
import { Http1Transport, type HttpResponse } from "../../../adapters/proxmox/transport.ts";
import {
  PveAuthenticationError,
  PveParameterError,
  PvePermissionError,
  PveRootRequiredError,
} from "../../../adapters/proxmox/mod.ts";
import { capturingLogger, settle, testEnv } from "./_support.ts";

/** A raw request to the simulator, to see exactly what PVE's wire shows. */
export async function rawRequest(
  url: string,
  caPem: string,
  request: { method: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<HttpResponse> {
  const transport = new Http1Transport(url, { caPem, insecure: true });
  try {
    return await transport.send({
      method: request.method,
      path: request.path,
      headers: {
        ...(request.body === undefined
          ? {}
          : { "content-type": "application/x-www-form-urlencoded" }),
        ...request.headers,
      },
      ...(request.body === undefined ? {} : { body: new TextEncoder().encode(request.body) }),
      timeoutMs: 10_000,
    });
  } finally {
    transport.close();
  }
}

Deno.test("A wrong token secret fails with PveAuthenticationError from a 401 with an empty body", async () => {
  await using env = await testEnv();
  const client = env.client({ auth: { tokenId: env.sim.token.tokenid, secret: "not-the-secret" } });
  const error = await client.version().catch((e) => e);
  assert.ok(error instanceof PveAuthenticationError);
  assert.equal(error.code, "Unauthenticated");
  assert.equal(error.details.pveMessage, "Authentication failed!");
  const raw = await rawRequest(env.sim.url, env.sim.caPem, {
    method: "GET",
    path: "/api2/json/version",
    headers: { authorization: `PVEAPIToken=${env.sim.token.tokenid}=nope` },
  });
  assert.equal(raw.status, 401);
  assert.equal(raw.reason, "Authentication failed!");
  assert.equal(raw.body, "");
});

Deno.test("Ticket auth logs in once and runs a whole lifecycle with CSRF tokens on writes", async () => {
  await using env = await testEnv({ users: [{ userid: "cri@pve", password: "s3cret-pass" }] });
  const client = env.client({ auth: { username: "cri", realm: "pve", password: "s3cret-pass" } });
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template(), start: true }));
  await settle(client, client.destroyCt({ vmid: 100, force: true }));
  const logins = env.requests.filter((r) => r.path === "/access/ticket");
  assert.equal(logins.length, 1);
  assert.equal(client.userid, "cri@pve");
  assert.ok(env.requests.every((r) => r.status === 200));
});

Deno.test("A ticket is renewed before its two hours run out, by posting it as the password", async () => {
  let now = Date.parse("2026-01-01T00:00:00Z");
  const clock = () => now;
  await using env = await testEnv({ now: clock });
  const client = env.client({
    auth: { username: "root@pam", password: env.sim.rootPassword },
    now: clock,
  });
  await client.version();
  now += 100 * 60_000; // past the client's renewal point, inside the ticket's lifetime
  await client.version();
  const logins = env.requests.filter((r) => r.path === "/access/ticket");
  assert.equal(logins.length, 2);
  assert.match(String(logins[1]!.params.password), /^PVE:root@pam:/);
  now += 100 * 60_000; // the renewed ticket is still good: no login needed yet
  now -= 30 * 60_000;
  await client.version();
  assert.equal(env.requests.filter((r) => r.path === "/access/ticket").length, 2);
});

Deno.test("An expired ticket is replaced by a fresh login after the 401", async () => {
  let now = Date.parse("2026-01-01T00:00:00Z");
  await using env = await testEnv({ now: () => now });
  const client = env.client({
    auth: { username: "root@pam", password: env.sim.rootPassword },
    now: () => Date.parse("2026-01-01T00:00:00Z"), // the client's clock sees no time pass
  });
  await client.version();
  now += 3 * 3600_000;
  assert.equal((await client.version()).release, "9.1");
  const logins = env.requests.filter((r) => r.path === "/access/ticket");
  assert.equal(logins.length, 2);
  assert.equal(env.requests.filter((r) => r.status === 401).length, 1);
});

Deno.test("A write with a ticket but without the CSRF token is refused with 401", async () => {
  await using env = await testEnv();
  const login = await rawRequest(env.sim.url, env.sim.caPem, {
    method: "POST",
    path: "/api2/json/access/ticket",
    body: `username=root%40pam&password=${encodeURIComponent(env.sim.rootPassword)}`,
  });
  const { ticket, CSRFPreventionToken } = JSON.parse(login.body).data;
  const cookie = `PVEAuthCookie=${encodeURIComponent(ticket)}`;
  const refused = await rawRequest(env.sim.url, env.sim.caPem, {
    method: "PUT",
    path: "/api2/json/nodes/pve1/lxc/100/config",
    headers: { cookie },
    body: "memory=64",
  });
  assert.equal(refused.status, 401);
  assert.equal(refused.reason, "Permission denied - invalid csrf token");
  const accepted = await rawRequest(env.sim.url, env.sim.caPem, {
    method: "PUT",
    path: "/api2/json/nodes/pve1/lxc/100/config",
    headers: { cookie, csrfpreventiontoken: CSRFPreventionToken },
    body: "memory=64",
  });
  assert.equal(accepted.status, 500); // past auth: the CT does not exist
  const read = await rawRequest(env.sim.url, env.sim.caPem, {
    method: "GET",
    path: "/api2/json/version",
    headers: { cookie },
  });
  assert.equal(read.status, 200, "reads need no CSRF token");
});

Deno.test("POST /access/ticket with an API token answers 403 as PVE does", async () => {
  await using env = await testEnv();
  const raw = await rawRequest(env.sim.url, env.sim.caPem, {
    method: "POST",
    path: "/api2/json/access/ticket",
    headers: { authorization: `PVEAPIToken=${env.sim.token.tokenid}=${env.sim.token.secret}` },
    body: "username=root%40pam&password=x",
  });
  assert.equal(raw.status, 403);
  assert.match(raw.reason, /not available with API token, need proper ticket/);
});

Deno.test("Root-only options with an API token fail before anything is sent (PveRootRequiredError)", async () => {
  await using env = await testEnv();
  const client = env.client();
  const before = env.requests.length;
  const features = await client.createCt({
    vmid: 100,
    ostemplate: env.template(),
    features: "nesting=1,keyctl=1",
  })
    .catch((e) => e);
  assert.ok(features instanceof PveRootRequiredError);
  assert.equal(features.code, "PermissionDenied");
  assert.match(features.message, /'keyctl' feature needs a root@pam ticket/);
  assert.match(features.message, /API tokens \(even root@pam's\) never can/);
  const bind = await client.updateCtConfig({
    vmid: 100,
    set: { extra: { mp0: "/srv/data,mp=/data" } },
  })
    .catch((e) => e);
  assert.ok(bind instanceof PveRootRequiredError);
  assert.match(bind.message, /bind mount \(mp0\)/);
  assert.equal(env.requests.length, before, "no request reached the node");
  // nesting alone is open to tokens
  await settle(
    client,
    client.createCt({ vmid: 100, ostemplate: env.template(), features: "nesting=1" }),
  );
});

Deno.test("A root@pam ticket may set root-only features; a non-root ticket may not", async () => {
  await using env = await testEnv({ users: [{ userid: "ops@pve", password: "ops-password" }] });
  const root = env.client({ auth: { username: "root@pam", password: env.sim.rootPassword } });
  await settle(
    root,
    root.createCt({ vmid: 100, ostemplate: env.template(), features: "keyctl=1,fuse=1" }),
  );
  assert.equal((await root.ctConfig({ vmid: 100 })).features, "keyctl=1,fuse=1");
  const ops = env.client({ auth: { username: "ops@pve", password: "ops-password" } });
  const error = await ops.updateCtConfig({ vmid: 100, set: { extra: { dev0: "/dev/fuse" } } })
    .catch((e) => e);
  assert.ok(error instanceof PveRootRequiredError);
  assert.match(error.message, /logged in as ops@pve/);
});

Deno.test("The simulator itself refuses root-only options from a token with PVE's 403", async () => {
  await using env = await testEnv();
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const auth = { authorization: `PVEAPIToken=${env.sim.token.tokenid}=${env.sim.token.secret}` };
  const put = (body: string) =>
    rawRequest(env.sim.url, env.sim.caPem, {
      method: "PUT",
      path: "/api2/json/nodes/pve1/lxc/100/config",
      headers: auth,
      body,
    });
  const bind = await put("mp0=%2Fsrv%2Fdata%2Cmp%3D%2Fdata");
  assert.equal(bind.status, 403);
  assert.equal(
    bind.reason,
    "Permission check failed (mount point type bind is only allowed for root@pam)",
  );
  const dev = await put("dev0=%2Fdev%2Ffuse");
  assert.equal(
    dev.reason,
    "Permission check failed (configuring device passthrough is only allowed for root@pam)",
  );
  const features = await put("features=keyctl%3D1");
  assert.equal(features.status, 403);
});

Deno.test("Secrets never appear in log lines or error messages", async () => {
  const { logger, lines } = capturingLogger();
  await using env = await testEnv({ logger });
  const password = env.sim.rootPassword;
  const tokenClient = env.client({ logger });
  const ticketClient = env.client({ logger, auth: { username: "root@pam", password } });
  const errors: unknown[] = [];
  const collect = (p: Promise<unknown>) => p.catch((e) => void errors.push(e));
  await settle(
    ticketClient,
    ticketClient.createCt({ vmid: 100, ostemplate: env.template(), password: "ct-root-pw-123" }),
  );
  await collect(
    ticketClient.createCt({ vmid: 101, ostemplate: env.template(), password: "x", memory: 1 }),
  );
  await collect(tokenClient.startCt({ vmid: 999 }));
  await collect(
    env.client({ logger, auth: { tokenId: env.sim.token.tokenid, secret: "wrong-secret-value" } })
      .version(),
  );
  await collect(
    env.client({ logger, auth: { username: "root@pam", password: "wrong-password-value" } })
      .version(),
  );
  // A server that echoes credentials back in an error: the client scrubs them.
  env.sim.faults.add({
    path: "/version",
    status: 500,
    message: `bad header PVEAPIToken=${env.sim.token.tokenid}=${env.sim.token.secret}`,
    times: 1,
  });
  await collect(tokenClient.version());
  assert.equal(errors.length, 5);
  assert.match(
    (errors[4] as Error).message,
    /bad header PVEAPIToken=root@pam!pve-cri=\[redacted\]$/,
  );
  assert.ok(errors[0] instanceof PveParameterError);
  assert.ok(lines.length > 5, "debug logging was on");
  const secrets = [
    env.sim.token.secret,
    password,
    "wrong-secret-value",
    "wrong-password-value",
    "ct-root-pw-123",
  ];
  const grants = env.requests
    .filter((r) => r.path === "/access/ticket" && r.status === 200)
    .map((r) => r.data as { ticket: string; CSRFPreventionToken: string });
  assert.ok(grants.length >= 1);
  for (const grant of grants) secrets.push(grant.ticket, grant.CSRFPreventionToken);
  const printed = [
    ...lines,
    ...errors.map((e) =>
      `${(e as Error).message} ${JSON.stringify((e as { details?: unknown }).details)}`
    ),
  ].join("\n");
  for (const secret of secrets) {
    assert.ok(!printed.includes(secret), `a secret leaked: ${secret.slice(0, 3)}…`);
  }
  assert.ok(!/PVE:root@pam:[0-9A-F]{8}::/.test(printed), "a ticket leaked");
});

Deno.test("A 403 from the node maps to PvePermissionError keeping PVE's text", async () => {
  await using env = await testEnv({
    faults: [{
      method: "POST",
      path: "/nodes/*/lxc/*/status/start",
      status: 403,
      message: "Permission check failed (/vms/100, VM.PowerMgmt)",
    }],
  });
  const client = env.client();
  await settle(client, client.createCt({ vmid: 100, ostemplate: env.template() }));
  const error = await client.startCt({ vmid: 100 }).catch((e) => e);
  assert.ok(error instanceof PvePermissionError);
  assert.ok(!(error instanceof PveRootRequiredError));
  assert.equal(error.code, "PermissionDenied");
  assert.equal(error.details.pveMessage, "Permission check failed (/vms/100, VM.PowerMgmt)");
});
