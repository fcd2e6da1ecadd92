/**
 * The CNI adapter inside the runtime, with plugins of the test's own that record what they are
 * given (a chain with one plugin declaring capabilities and one not; a 1.1 list for GC): what
 * reaches each plugin from the pod's config, and GC at startup and on its interval with the
 * sandboxes' attachments as the valid ones. No root needed: the plugins touch nothing.
 */
import assert from "node:assert/strict";
import { CniNetwork } from "../../../adapters/cni/cni_network.ts";
import { silentLogger } from "../../../lib/log.ts";
import { openRuntime } from "../../../runtime/open_runtime.ts";
import { sandboxSpec } from "../../_support/specs.ts";
import { tempDir } from "../../_support/temp_dir.ts";
import { until } from "../../_support/until.ts";

const call = { meta: { method: "test" } };

/**
 * A plugin that answers as a 1.1 plugin, keeps each call's stdin as COMMAND-N.json and its
 * CNI_ARGS as COMMAND-N.args, and appends "TYPE COMMAND" to the shared `calls` file.
 */
function recordingPlugin(bin: string, type: string, record: string) {
  Deno.mkdirSync(bin, { recursive: true });
  Deno.mkdirSync(record, { recursive: true });
  Deno.writeTextFileSync(
    `${bin}/${type}`,
    `#!/bin/sh
[ "$CNI_COMMAND" = VERSION ] && exec echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}'
n=$(ls ${record} | grep -c "^$CNI_COMMAND-.*json$")
cat > ${record}/$CNI_COMMAND-$n.json
echo "${type} $CNI_COMMAND" >> ${record}/../calls
echo "$CNI_ARGS" > ${record}/$CNI_COMMAND-$n.args
[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.1.0","ips":[{"address":"10.88.7.2/24"}]}'
exit 0
`,
    { mode: 0o755 },
  );
}

Deno.test("CNI in the runtime: capability args reach only the plugins that declare them; GC at startup and on its interval", async () => {
  using dir = tempDir("pve-cri-cni-rt-");
  const bin = `${dir.path}/bin`;
  recordingPlugin(bin, "first", `${dir.path}/first`);
  recordingPlugin(bin, "second", `${dir.path}/second`);
  const confDir = `${dir.path}/net.d`;
  Deno.mkdirSync(confDir);
  Deno.writeTextFileSync(
    `${confDir}/10-rec.conflist`,
    JSON.stringify({
      cniVersion: "1.1.0",
      name: "rec",
      plugins: [
        { type: "first", capabilities: { portMappings: true, dns: true } },
        { type: "second" },
      ],
    }),
  );
  const configFile = `${dir.path}/config.json`;
  Deno.writeTextFileSync(configFile, JSON.stringify({ cni: { gcIntervalSeconds: 1 } }));
  const rt = await openRuntime({
    stateDir: `${dir.path}/state`,
    backend: "memory",
    configFile,
    log: silentLogger,
    version: "test",
    cni: new CniNetwork({ confDir, binDirs: [bin], cacheDir: `${dir.path}/results` }),
  });
  try {
    const read = (who: string, name: string) =>
      JSON.parse(Deno.readTextFileSync(`${dir.path}/${who}/${name}`));
    // At startup, before any pod: nothing is valid.
    const first = await until("GC at startup", () => {
      try {
        return read("first", "GC-0.json");
      } catch {
        return undefined;
      }
    });
    assert.deepEqual(first["cni.dev/valid-attachments"], []);

    const pod = await rt.runtime.runPodSandbox(
      sandboxSpec("web", {
        portMappings: [{ protocol: "TCP", containerPort: 80, hostPort: 8080, hostIp: "" }],
        dnsConfig: { servers: ["10.96.0.10"], searches: ["svc.cluster.local"], options: [] },
        annotations: { "kubernetes.io/ingress-bandwidth": "10M" },
      }),
      call,
    );
    assert.deepEqual(pod.ips, ["10.88.7.2"]);
    const added = read("first", "ADD-0.json");
    assert.deepEqual(added.runtimeConfig, {
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
      dns: { servers: ["10.96.0.10"], searches: ["svc.cluster.local"], options: [] },
    }, "bandwidth was not declared by it");
    assert.equal(read("second", "ADD-0.json").runtimeConfig, undefined, "it declared nothing");
    assert.deepEqual(read("second", "ADD-0.json").prevResult.ips, [{ address: "10.88.7.2/24" }]);
    assert.equal(
      Deno.readTextFileSync(`${dir.path}/first/ADD-0.args`).trim(),
      `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;` +
        `K8S_POD_INFRA_CONTAINER_ID=${pod.id};K8S_POD_UID=web-uid`,
    );

    // On its interval, GC is told the pod's attachment is valid.
    const later = await until("a GC that knows the pod", () => {
      for (let n = 1; n < 20; n++) {
        try {
          const sent = read("first", `GC-${n}.json`);
          if (sent["cni.dev/valid-attachments"].length > 0) return sent;
        } catch {
          return undefined;
        }
      }
      return undefined;
    });
    assert.deepEqual(later["cni.dev/valid-attachments"], [{ containerID: pod.id, ifname: "eth0" }]);

    await rt.runtime.stopPodSandbox(pod.id, call);
    // ADD in order, DEL in reverse, each DEL with the result ADD recorded.
    const calls = Deno.readTextFileSync(`${dir.path}/calls`).trim().split("\n")
      .filter((line) => !line.endsWith(" GC"));
    assert.deepEqual(calls, ["first ADD", "second ADD", "second DEL", "first DEL"]);
    assert.deepEqual(read("first", "DEL-0.json").prevResult.ips, [{ address: "10.88.7.2/24" }]);
  } finally {
    await rt.close();
  }
});
