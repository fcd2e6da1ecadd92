import assert from "node:assert/strict";
import {
  clientOptionsFromConfig,
  createProxmoxClient,
  loadProxmoxConfig,
} from "../../../adapters/proxmox/mod.ts";
import { silentLogger } from "../../../lib/log.ts";

Deno.test("deno task sim runs on its own, prints URL, token and fingerprint, and writes a usable config file", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "pve-cri-sim-cli-" });
  const configFile = `${dir}/proxmox.json`;
  const main = new URL("../../../adapters/proxmox/sim/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      main,
      "--listen",
      "127.0.0.1:0",
      "--state-dir",
      `${dir}/state`,
      "--config-out",
      configFile,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("ca: ")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    reader.releaseLock();
    assert.match(out, /^url: https:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(out, /^token: root@pam!pve-cri=[0-9a-f-]{36}$/m);
    assert.match(out, /^fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}$/m);
    assert.equal(Deno.statSync(configFile).mode! & 0o777, 0o600);
    const config = loadProxmoxConfig(configFile);
    const client = createProxmoxClient({
      ...clientOptionsFromConfig(config),
      logger: silentLogger,
    });
    assert.equal((await client.version()).release, "9.1");
    const pinned = createProxmoxClient({
      ...clientOptionsFromConfig(config),
      tls: { fingerprint: /^fingerprint: (.*)$/m.exec(out)![1]! },
      logger: silentLogger,
    });
    assert.equal(await pinned.nextVmid(), 100);
    client.close();
    pinned.close();
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel();
    Deno.removeSync(dir, { recursive: true });
  }
});
