/**
 * The pod network through the real CNI reference plugins (Debian's containernetworking-plugins)
 * in a real network namespace, on a bridge the test makes: a chained conflist (bridge with
 * host-local, then tuning and bandwidth) proves prevResult and capability args; the result
 * cache lets a new instance (a restarted pve-cri) DEL; the conf dir is read again when it
 * changes; a plugin's error names it.
 */
import assert from "node:assert/strict";
import { CniNetwork } from "../../../adapters/cni/cni_network.ts";
import { CniPluginError, findPlugin } from "../../../adapters/cni/plugin_exec.ts";
import { FailedPreconditionError } from "../../../lib/errors.ts";
import { tempDir } from "../../_support/temp_dir.ts";
import { runTool } from "../../../adapters/node/run_tool.ts";
import { cniBinDirs } from "../../_support/cni_networks.ts";

const binDirs = cniBinDirs;

function whyNot(): string | undefined {
  if (Deno.uid() !== 0) return "needs root";
  for (const plugin of ["bridge", "host-local", "tuning", "bandwidth"]) {
    if (findPlugin(plugin, binDirs) === undefined) {
      return `CNI plugin ${plugin} missing (apt-get install containernetworking-plugins)`;
    }
  }
  return undefined;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const why = whyNot();

Deno.test({
  name: `CNI: a chained conflist ADDs and DELs a pod through the real plugins${
    why === undefined ? "" : ` (skipped: ${why})`
  }`,
  ignore: why !== undefined,
  async fn() {
    using dir = tempDir("pve-cri-cni-");
    const suffix = crypto.randomUUID().slice(0, 6);
    const bridge = `pcni${suffix}`;
    const octet = 100 + Math.floor(Math.random() * 150);
    const confDir = `${dir.path}/net.d`;
    Deno.mkdirSync(confDir);
    const netns = `${dir.path}/netns`;
    Deno.writeFileSync(netns, new Uint8Array());
    await runTool("unshare", [`--net=${netns}`, "true"]);
    const options = { confDir, binDirs, cacheDir: `${dir.path}/results` };
    const cni = new CniNetwork(options);
    const pod = { namespace: "e2e", name: "web", uid: "uid-1" };
    const request = { sandboxId: `sb${suffix}`, netns, name: "podnet", ifname: "eth0", pod };
    try {
      // No config yet: not ready, and a pod on the pod network is refused; host network is not.
      const before = await cni.status();
      assert.equal(before.ready, false);
      assert.equal(before.reason, "NetworkPluginNotReady");
      assert.match(before.message, /no network config found/);
      assert.throws(() => cni.networksFor(false), FailedPreconditionError);
      assert.deepEqual(cni.networksFor(true), []);

      // A conflist that is not JSON is no network: not ready, naming the file and why.
      Deno.writeTextFileSync(`${confDir}/05-broken.conflist`, "{ not json");
      const unreadable = await cni.status();
      assert.equal(unreadable.ready, false);
      assert.match(unreadable.message, /no network config found .*05-broken\.conflist: .*JSON/);
      Deno.removeSync(`${confDir}/05-broken.conflist`);

      // An agent writes its conflist later: ready without a restart.
      Deno.writeTextFileSync(
        `${confDir}/10-podnet.conflist`,
        JSON.stringify({
          cniVersion: "1.0.0",
          name: "podnet",
          plugins: [
            {
              type: "bridge",
              bridge,
              isGateway: true,
              ipam: {
                type: "host-local",
                ranges: [[{ subnet: `10.88.${octet}.0/24` }]],
                dataDir: `${dir.path}/ipam`,
              },
            },
            { type: "tuning", mtu: 1400 },
            { type: "bandwidth", capabilities: { bandwidth: true } },
          ],
        }),
      );
      assert.deepEqual(await cni.status(), { ready: true, reason: "", message: "" });
      assert.deepEqual(cni.networksFor(false), [{ name: "podnet", ifname: "eth0" }]);

      const result = await cni.add({
        ...request,
        capabilityArgs: {
          bandwidth: { ingressRate: 8_000_000, ingressBurst: 2 ** 31 - 1 },
          portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
        },
      });
      const address = result.ips[0]?.address;
      assert.match(address ?? "", new RegExp(`^10\\.88\\.${octet}\\.\\d+/24$`));
      const inside = await runTool("nsenter", [
        `--net=${netns}`,
        "ip",
        "-o",
        "addr",
        "show",
        "eth0",
      ]);
      assert.ok(inside.includes(address!), inside);
      // tuning ran after bridge, on the interface bridge's result named: prevResult reached it.
      const link = await runTool("nsenter", [`--net=${netns}`, "ip", "-o", "link", "show", "eth0"]);
      assert.match(link, /mtu 1400/);
      // bandwidth got its capability arg (portMappings it did not declare, so not that).
      const hostVeth = (result.interfaces ?? [])
        .find((i) => i.sandbox === undefined && i.name !== bridge)?.name;
      assert.ok(hostVeth !== undefined, JSON.stringify(result.interfaces));
      assert.match(await runTool("tc", ["qdisc", "show", "dev", hostVeth]), /tbf .*rate 8Mbit/);
      assert.ok(exists(`${dir.path}/ipam/podnet/${address!.split("/")[0]}`), "IP allocated");

      // CHECK through the chain, with the cached result: the attachment is as ADD made it.
      await cni.check(request);

      // A new instance, as after a restart: DEL from the cache (prevResult), in reverse order.
      const restarted = new CniNetwork(options);
      await restarted.del(request);
      assert.equal(exists(`${dir.path}/ipam/podnet/${address!.split("/")[0]}`), false, "IP freed");
      await assert.rejects(
        runTool("nsenter", [`--net=${netns}`, "ip", "link", "show", "eth0"]),
        /does not exist/,
      );
      assert.deepEqual([...Deno.readDirSync(`${dir.path}/results`)], [], "cache entry gone");
      await restarted.del(request); // DEL of what is gone succeeds

      // An attachment whose interface went away behind CNI's back fails CHECK, naming the plugin.
      const broken = { ...request, sandboxId: `sb2${suffix}` };
      await cni.add(broken);
      await runTool("nsenter", [`--net=${netns}`, "ip", "link", "del", "eth0"]);
      await assert.rejects(cni.check(broken), /CNI plugin bridge CHECK failed/);
      await cni.del(broken);

      // A plugin's error JSON becomes an error naming it.
      Deno.writeTextFileSync(
        `${confDir}/10-podnet.conflist`,
        JSON.stringify({
          cniVersion: "1.0.0",
          name: "podnet",
          plugins: [{
            type: "bridge",
            bridge,
            ipam: { type: "host-local", ranges: [[{ subnet: "not-a-subnet" }]] },
          }],
        }),
      );
      await assert.rejects(cni.add(request), (error: unknown) => {
        assert.ok(error instanceof CniPluginError, String(error));
        assert.match(error.message, /CNI plugin bridge ADD failed/);
        return true;
      });
      // Its DEL reads the same broken config: an error too (the sandbox records the leak).
      await assert.rejects(cni.del(request), /CNI plugin bridge DEL failed: invalid CIDR/);

      // A plugin that cannot speak the list's version (VERSION): not ready, naming it.
      Deno.writeTextFileSync(
        `${confDir}/10-podnet.conflist`,
        JSON.stringify({ cniVersion: "9.9.9", name: "podnet", plugins: [{ type: "bridge" }] }),
      );
      const tooNew = await cni.status();
      assert.equal(tooNew.ready, false);
      assert.match(tooNew.message, /CNI plugin bridge speaks .*1\.0\.0, not 9\.9\.9/);
      await assert.rejects(cni.add(request), /not 9\.9\.9/);

      // A plugin that is not installed: not ready, naming it.
      Deno.writeTextFileSync(
        `${confDir}/10-podnet.conflist`,
        JSON.stringify({ cniVersion: "1.0.0", name: "podnet", plugins: [{ type: "nope" }] }),
      );
      const missing = await cni.status();
      assert.equal(missing.ready, false);
      assert.match(missing.message, /CNI plugin nope .* not found/);
    } finally {
      await runTool("umount", [netns]).catch(() => {});
      await runTool("ip", ["link", "del", bridge]).catch(() => {});
    }
  },
});

Deno.test({
  name: `CNI: a plugin past its timeout is killed and the ADD fails naming it${
    why === undefined ? "" : ` (skipped: ${why})`
  }`,
  ignore: why !== undefined,
  async fn() {
    using dir = tempDir("pve-cri-cni-");
    // A plugin of the test's own that never answers (it would hang the pod's setup).
    const bin = `${dir.path}/bin`;
    Deno.mkdirSync(bin);
    Deno.writeTextFileSync(
      `${bin}/stuck`,
      `#!/bin/sh\n[ "$CNI_COMMAND" = VERSION ] && exec echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'\nexec sleep 300\n`,
      { mode: 0o755 },
    );
    const confDir = `${dir.path}/net.d`;
    Deno.mkdirSync(confDir);
    Deno.writeTextFileSync(
      `${confDir}/10-stuck.conflist`,
      JSON.stringify({ cniVersion: "1.0.0", name: "stuck", plugins: [{ type: "stuck" }] }),
    );
    const cni = new CniNetwork({
      confDir,
      binDirs: [bin],
      cacheDir: `${dir.path}/results`,
      timeoutMs: 300,
    });
    const request = { sandboxId: "sb", netns: "/dev/null", name: "stuck", ifname: "eth0" };
    await assert.rejects(cni.add(request), /CNI plugin stuck ADD failed: timed out after 300 ms/);
    const left = [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).filter((e) => {
      try {
        return Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes("sleep");
      } catch {
        return false;
      }
    }).filter((e) => {
      try {
        return Deno.readTextFileSync(`/proc/${e.name}/environ`).includes("CNI_COMMAND=ADD");
      } catch {
        return false;
      }
    });
    assert.deepEqual(left, [], "the plugin is gone");
  },
});

Deno.test({
  name: `CNI 1.1: STATUS decides NetworkReady, GC gets the valid attachments and the cache follows${
    why === undefined ? "" : ` (skipped: ${why})`
  }`,
  ignore: why !== undefined,
  async fn() {
    using dir = tempDir("pve-cri-cni-");
    // No 1.1 plugin ships in Debian yet: a plugin of the test's own speaks it.
    const bin = `${dir.path}/bin`;
    Deno.mkdirSync(bin);
    Deno.writeTextFileSync(
      `${bin}/eleven`,
      `#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
STATUS) if [ -e ${dir.path}/down ]; then
    echo '{"cniVersion":"1.1.0","code":50,"msg":"the agent is not running"}'; exit 1; fi ;;
GC) cat > ${dir.path}/gc-stdin ;;
ADD) cat > /dev/null; echo '{"cniVersion":"1.1.0","ips":[{"address":"10.88.9.2/24"}]}' ;;
*) cat > /dev/null ;;
esac
`,
      { mode: 0o755 },
    );
    const confDir = `${dir.path}/net.d`;
    Deno.mkdirSync(confDir);
    Deno.writeTextFileSync(
      `${confDir}/10-eleven.conflist`,
      JSON.stringify({ cniVersion: "1.1.0", name: "eleven", plugins: [{ type: "eleven" }] }),
    );
    const cni = new CniNetwork({ confDir, binDirs: [bin], cacheDir: `${dir.path}/results` });
    assert.equal((await cni.status()).ready, true);
    Deno.writeFileSync(`${dir.path}/down`, new Uint8Array());
    const down = await cni.status();
    assert.equal(down.ready, false);
    assert.match(down.message, /CNI plugin eleven STATUS failed: the agent is not running/);
    Deno.removeSync(`${dir.path}/down`);
    assert.equal((await cni.status()).ready, true, "STATUS is asked each time");

    const request = (sandboxId: string) => ({
      sandboxId,
      netns: "/proc/self/ns/net",
      name: "eleven",
      ifname: "eth0",
    });
    await cni.add(request("sb1"));
    await cni.add(request("sb2"));
    await cni.gc([{ sandboxId: "sb1", ifname: "eth0" }]);
    const sent = JSON.parse(Deno.readTextFileSync(`${dir.path}/gc-stdin`));
    assert.deepEqual(sent["cni.dev/valid-attachments"], [{ containerID: "sb1", ifname: "eth0" }]);
    assert.equal(sent.name, "eleven");
    assert.deepEqual(
      [...Deno.readDirSync(`${dir.path}/results`)].map((e) => e.name),
      ["eleven-sb1-eth0"],
      "the cache keeps only what is valid",
    );
  },
});
