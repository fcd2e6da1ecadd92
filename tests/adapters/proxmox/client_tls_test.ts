import assert from "node:assert/strict";
import { createProxmoxClient, PveTransportError } from "../../../adapters/proxmox/mod.ts";
import { silentLogger } from "../../../lib/log.ts";
import { InvalidArgumentError } from "../../../lib/errors.ts";
import { testEnv } from "./_support.ts";

Deno.test("Client trusts the node through the cluster CA file", async () => {
  await using env = await testEnv();
  const client = env.client({ tls: { caFile: env.sim.caFile } });
  assert.equal((await client.version()).release, "9.1");
});

Deno.test("Client refuses a node whose certificate another CA signed", async () => {
  await using a = await testEnv();
  await using b = await testEnv();
  const client = a.client({ url: b.sim.url, tls: { caPem: a.sim.caPem } });
  const error = await client.version().catch((e) => e);
  assert.ok(error instanceof PveTransportError);
  assert.match(error.message, /TLS verification failed/);
  assert.equal(b.requests.length, 0, "nothing reached the untrusted server");
});

Deno.test("Client refuses the simulator's self-signed CA when trusting only the system roots", async () => {
  await using env = await testEnv();
  const client = env.client({ tls: {} });
  await assert.rejects(client.version(), PveTransportError);
  assert.equal(env.requests.length, 0);
});

Deno.test("A pinned fingerprint connects; a wrong pin is refused before credentials are sent", async () => {
  await using env = await testEnv();
  const pinned = env.client({ tls: { fingerprint: env.sim.fingerprint.toLowerCase() } });
  assert.equal((await pinned.version()).release, "9.1");
  const wrong = env.client({ tls: { fingerprint: "AB".repeat(32) } });
  const error = await wrong.version().catch((e) => e);
  assert.ok(error instanceof PveTransportError);
  assert.match(error.message, /fingerprint .* does not match the pinned AB:AB/);
  assert.equal(env.requests.length, 1, "only the pinned client's request arrived");
});

Deno.test("A pinned fingerprint survives a simulator restart (the node keeps its certificate)", async () => {
  await using env = await testEnv();
  const fingerprint = env.sim.fingerprint;
  await env.sim.close();
  await env.restart();
  assert.equal(env.sim.fingerprint, fingerprint);
  const client = env.client({ tls: { fingerprint } });
  assert.equal((await client.version()).release, "9.1");
});

Deno.test("Plain http needs the explicit insecure option", async () => {
  await using env = await testEnv({ insecure: true });
  assert.match(env.sim.url, /^http:/);
  assert.throws(
    () =>
      createProxmoxClient({
        url: env.sim.url,
        node: "pve1",
        auth: { tokenId: env.sim.token.tokenid, secret: env.sim.token.secret },
        logger: silentLogger,
      }),
    (error) => error instanceof InvalidArgumentError && /Refusing plain HTTP/.test(error.message),
  );
  const client = env.client({ tls: { insecure: true } });
  assert.equal((await client.version()).release, "9.1");
});

Deno.test("An invalid fingerprint is refused when the client is made", () => {
  assert.throws(
    () =>
      createProxmoxClient({
        url: "https://127.0.0.1:8006",
        node: "pve1",
        auth: { tokenId: "root@pam!x", secret: "s" },
        tls: { fingerprint: "12:34" },
      }),
    InvalidArgumentError,
  );
});
