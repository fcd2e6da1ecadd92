/**
 * The simulator's own endpoint definitions against the official PVE 9.1 schema, and the
 * checker that every other test runs on each request and answer (see _support.ts).
 */
import assert from "node:assert/strict";
import type { SimNode } from "../../../adapters/proxmox/sim/endpoint.ts";
import { endpointDefinitions } from "../../../adapters/proxmox/sim/simulator.ts";
import type { ParamSchema, ParamTable } from "../../../adapters/proxmox/sim/schema/types.ts";
import { type Apidoc, apidocPath, checkRequest, checkResponse, loadApidoc } from "./_apidoc.ts";
import { settle, testEnv } from "./_support.ts";

const apidoc = loadApidoc();

function contractTest(name: string, fn: (apidoc: Apidoc) => Promise<void> | void) {
  if (apidoc === undefined) {
    Deno.test({
      name:
        `${name} (skipped: the PVE API schema is not at ${apidocPath}; set PVE_CRI_SHARED or PVE_APIDOC)`,
      ignore: true,
      fn() {},
    });
  } else {
    Deno.test(name, () => fn(apidoc));
  }
}

/** The facets of a parameter both sides must agree on. */
function facets(schema: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { type: schema.type, optional: Boolean(schema.optional) };
  for (const key of ["enum", "pattern", "minLength", "maxLength"] as const) {
    if (schema[key] !== undefined) out[key] = schema[key];
  }
  for (const key of ["minimum", "maximum"] as const) {
    if (schema[key] !== undefined) out[key] = Number(schema[key]);
  }
  if (schema.default_key) out.default_key = true;
  if (typeof schema.format === "string") out.format = schema.format;
  if (typeof schema.format === "object" && schema.format !== null) {
    out.format = Object.fromEntries(
      Object.entries(schema.format as Record<string, Record<string, unknown>>).map((
        [k, v],
      ) => [k, facets(v)]),
    );
  }
  return out;
}

contractTest(
  "Every endpoint the simulator serves matches apidoc.json, parameter by parameter",
  (apidoc) => {
    const endpoints = endpointDefinitions({} as SimNode, "");
    assert.ok(endpoints.length >= 20);
    for (const endpoint of endpoints) {
      const where = `${endpoint.method} ${endpoint.path}`;
      const found = apidoc.find(endpoint.method, endpoint.path.replace(/\{(\w+)\}/g, "{$1}"));
      assert.ok(found !== undefined, `${where} is not in apidoc.json`);
      assert.equal(found.operation.path, endpoint.path, where);
      const official = found.operation.parameters.properties ?? {};
      const ours: ParamTable = endpoint.params;
      assert.deepEqual(
        Object.keys(ours).sort(),
        Object.keys(official).sort(),
        `${where}: parameter names`,
      );
      for (const [name, schema] of Object.entries(official)) {
        assert.deepEqual(
          facets(ours[name] as ParamSchema as unknown as Record<string, unknown>),
          facets(schema),
          `${where}: ${name}`,
        );
      }
      assert.equal(
        endpoint.allowToken !== false,
        found.operation.allowtoken !== 0,
        `${where}: allowtoken`,
      );
    }
  },
);

contractTest("The request check refuses what the schema refuses", (apidoc) => {
  const ok = { method: "POST", path: "/nodes/pve1/lxc/100/status/start", params: {}, json: false };
  assert.deepEqual(checkRequest(apidoc, ok), []);
  assert.deepEqual(checkRequest(apidoc, { ...ok, params: { skiplock: "yes" } }), [
    "POST /nodes/{node}/lxc/{vmid}/status/start: skiplock: type check ('boolean') failed - got 'yes'",
  ]);
  assert.deepEqual(checkRequest(apidoc, { ...ok, params: { timeout: "5" } }), [
    "POST /nodes/{node}/lxc/{vmid}/status/start: timeout: property is not defined in schema and the schema does not allow additional properties",
  ]);
  assert.deepEqual(checkRequest(apidoc, { ...ok, path: "/nodes/pve1/lxc/100/status/pause" }), [
    "POST /nodes/pve1/lxc/100/status/pause: not in apidoc.json",
  ]);
  assert.deepEqual(checkRequest(apidoc, { ...ok, path: "/nodes/pve1/lxc/1/status/start" }), [
    "POST /nodes/{node}/lxc/{vmid}/status/start: vmid: value must have a minimum value of 100",
  ]);
  assert.deepEqual(
    checkRequest(apidoc, {
      method: "POST",
      path: "/nodes/pve1/lxc",
      params: { vmid: "100" },
      json: false,
    }),
    [
      "POST /nodes/{node}/lxc: ostemplate: property is missing and it is not optional",
    ],
  );
});

contractTest("The answer check refuses data of the wrong JSON type", (apidoc) => {
  assert.deepEqual(
    checkResponse(apidoc, "GET", "/version", {
      version: "9.1.9",
      release: "9.1",
      repoid: "abcdef12",
    }),
    [],
  );
  assert.deepEqual(
    checkResponse(apidoc, "GET", "/version", { version: 9, release: "9.1", repoid: "abcdef12" }),
    [
      "GET /version → data.version: not a string",
    ],
  );
  assert.deepEqual(
    checkResponse(apidoc, "GET", "/nodes/pve1/lxc", [{ vmid: "x", status: "running" }]),
    [
      "GET /nodes/{node}/lxc → data[0].vmid: not an integer",
    ],
  );
});

contractTest(
  "Every operation of the client sends requests the schema accepts and gets answers it describes",
  async () => {
    // testEnv checks each request and answer against apidoc.json and fails on disposal otherwise.
    await using env = await testEnv();
    const client = env.client();
    await client.version();
    const { vmid, upid } = await client.createCtWithNextId({
      ostemplate: env.template(),
      hostname: "c1",
      memory: 64,
      swap: 0,
      cores: 1,
      cpulimit: 1.5,
      cpuunits: 100,
      net: ["name=eth0,bridge=vmbr0,ip=dhcp,firewall=1"],
      rootfs: "local-lvm:1",
      unprivileged: true,
      features: "nesting=1",
      tags: ["a", "b"],
      description: "d",
      entrypoint: "/bin/true",
      env: ["A=1"],
      cmode: "console",
      ostype: "unmanaged",
      storage: "local-lvm",
      password: "secret-pw",
    });
    await settle(client, upid);
    const config = await client.ctConfig({ vmid });
    await client.updateCtConfig({
      vmid,
      digest: config.digest,
      set: { memory: 96 },
      delete: ["description"],
    });
    await settle(client, client.startCt({ vmid }));
    await client.ctStatus({ vmid });
    await client.listCts();
    await client.clusterResources();
    await settle(client, client.shutdownCt({ vmid, timeout: 5, forceStop: true }));
    await settle(client, client.startCt({ vmid }));
    await settle(client, client.stopCt({ vmid, overruleShutdown: true }));
    const pulled = await client.pullOciImage({
      storage: "local",
      reference: "docker.io/library/busybox:1.36",
      filename: "bb",
    });
    await settle(client, pulled.upid);
    await client.taskLog(pulled.upid, { start: 0, limit: 10 });
    await settle(
      client,
      client.uploadToStorage({
        storage: "local",
        filename: "t.tar.gz",
        data: new Uint8Array([1, 2]),
      }),
    );
    await client.listStorageContent({ storage: "local", content: "vztmpl" });
    await client.deleteVolume({ volid: "local:vztmpl/t.tar.gz", delay: 5 });
    await settle(client, client.destroyCt({ vmid, force: true, purge: true }));
    const paths = new Set(
      env.requests.map((r) => `${r.method} ${apidoc!.find(r.method, r.path)?.operation.path}`),
    );
    assert.ok(paths.size >= 18, [...paths].join("\n"));
  },
);
