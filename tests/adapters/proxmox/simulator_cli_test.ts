import assert from "node:assert/strict";
import {
  clientOptionsFromConfig,
  createProxmoxClient,
  loadProxmoxConfig,
} from "../../../adapters/proxmox/mod.ts";
import { silentLogger } from "../../../lib/log.ts";

/** Starts `sim/main.ts` as its own process and reads what it prints up to the CA line. */
async function spawnSim(stateDir: string, extra: string[] = []) {
  const main = new URL("../../../adapters/proxmox/sim/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      main,
      "--listen",
      "127.0.0.1:0",
      "--state-dir",
      stateDir,
      ...extra,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ca: ")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const field = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(out)?.[1] ?? "";
  return {
    child,
    out,
    url: field("url"),
    token: field("token"),
    async stop(signal: Deno.Signal) {
      child.kill(signal);
      await child.status;
      await reader.cancel().catch(() => {});
    },
  };
}

Deno.test("A SIGKILLed simulator process, started again on its state dir, has its CTs and finishes its tasks", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "pve-cri-sim-kill-" });
  try {
    Deno.mkdirSync(`${dir}/storage/local/template/cache`, { recursive: true });
    Deno.writeTextFileSync(`${dir}/storage/local/template/cache/t.tar.zst`, "template");
    let sim = await spawnSim(dir);
    const [tokenId, secret] = [
      sim.token.slice(0, sim.token.lastIndexOf("=")),
      sim.token.slice(sim.token.lastIndexOf("=") + 1),
    ];
    const clientFor = (url: string) =>
      createProxmoxClient({
        url,
        node: "pve1",
        auth: { tokenId: tokenId!, secret: secret! },
        tls: { caFile: `${dir}/pki/pve-root-ca.pem` },
        logger: silentLogger,
      });
    let client = clientFor(sim.url);
    await client.waitForTask(
      await client.createCt({
        vmid: 100,
        ostemplate: "local:vztmpl/t.tar.zst",
        rootfs: "local-lvm:1",
        start: true,
      }),
    );
    // A second create is in flight (its task sleeps) when the process is killed.
    const control = await fetch(`${sim.url}/_sim/faults`, {
      method: "POST",
      headers: { authorization: `PVEAPIToken=${sim.token}` },
      body: JSON.stringify({ method: "POST", path: "/nodes/*/lxc", taskDelayMs: 500 }),
      client: Deno.createHttpClient({
        caCerts: [Deno.readTextFileSync(`${dir}/pki/pve-root-ca.pem`)],
      }),
    });
    await control.body?.cancel();
    const inFlight = await client.createCt({
      vmid: 101,
      ostemplate: "local:vztmpl/t.tar.zst",
      rootfs: "local-lvm:1",
    });
    client.close();
    await sim.stop("SIGKILL");

    sim = await spawnSim(dir);
    client = clientFor(sim.url);
    try {
      assert.equal((await client.ctStatus({ vmid: 100 })).status, "running");
      assert.equal((await client.waitForTask(inFlight)).exitstatus, "OK");
      assert.equal((await client.ctConfig({ vmid: 101 })).lock, undefined);
      assert.deepEqual((await client.listCts()).map((c) => c.vmid), [100, 101]);
    } finally {
      client.close();
      await sim.stop("SIGTERM");
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("deno task sim runs on its own, prints URL, token and fingerprint, and writes a usable config file", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "pve-cri-sim-cli-" });
  const configFile = `${dir}/proxmox.json`;
  const sim = await spawnSim(`${dir}/state`, ["--config-out", configFile]);
  try {
    assert.match(sim.out, /^url: https:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(sim.out, /^token: root@pam!pve-cri=[0-9a-f-]{36}$/m);
    assert.match(sim.out, /^fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}$/m);
    assert.equal(Deno.statSync(configFile).mode! & 0o777, 0o600);
    const config = loadProxmoxConfig(configFile);
    const client = createProxmoxClient({
      ...clientOptionsFromConfig(config),
      logger: silentLogger,
    });
    assert.equal((await client.version()).release, "9.1");
    const pinned = createProxmoxClient({
      ...clientOptionsFromConfig(config),
      tls: { fingerprint: /^fingerprint: (.*)$/m.exec(sim.out)![1]! },
      logger: silentLogger,
    });
    assert.equal(await pinned.nextVmid(), 100);
    client.close();
    pinned.close();
  } finally {
    await sim.stop("SIGTERM");
    Deno.removeSync(dir, { recursive: true });
  }
});
