/**
 * SIGTERM while operations are in flight: pve-cri stops at once, what it had recorded stays
 * resumable, and the next start finishes it — each CT made once, the state true afterwards.
 * pve-cri runs `--backend proxmox` (node stand-ins) against a simulator this test runs, whose
 * slowed tasks keep the creates in flight when the signal comes.
 */
import assert from "node:assert/strict";
import {
  clientOptionsFromConfig,
  createProxmoxClient,
  writeProxmoxConfig,
} from "../../adapters/proxmox/mod.ts";
import {
  type RequestRecord,
  simulatorConfig,
  startSimulator,
} from "../../adapters/proxmox/sim/mod.ts";
import { databasePath } from "../../lib/paths.ts";
import { upcastEvent } from "../../machines/events.ts";
import { machines } from "../../machines/fold.ts";
import { projectionNames } from "../../machines/projections.ts";
import { EventStore } from "../../store/mod.ts";
import { connect } from "../_support/cri_client.ts";
import { assertStateTrue } from "../_support/cri_state.ts";
import { registryMissing, startRegistry } from "../_support/registry.ts";
import { startServer } from "../_support/server_process.ts";
import { tempDir } from "../_support/temp_dir.ts";
import { smallImage } from "../_support/test_image.ts";
import { until } from "../_support/until.ts";

const missing = registryMissing();

Deno.test({
  name: `SIGTERM with creates in flight: a restart finishes them, each CT made once${
    missing === undefined ? "" : ` (skipped: ${missing})`
  }`,
  ignore: missing !== undefined,
  fn: sigtermResume,
});

/** The containers' states as the log has them, read beside the server. */
function containerStates(stateDir: string): Map<string, string> {
  const store = EventStore.open({
    path: databasePath(stateDir),
    readOnly: true,
    upcast: upcastEvent,
  });
  try {
    const rows = store.listProjectionSummaries<{ state: string }>(projectionNames.container);
    return new Map(rows.map((r) => [r.stream, r.summary.state]));
  } finally {
    store.close();
  }
}

async function sigtermResume() {
  using dir = tempDir();
  await using registry = await startRegistry();
  await registry.push("library/busybox", "1.36", smallImage());
  const image = `${registry.host}/library/busybox:1.36`;
  const requests: RequestRecord[] = [];
  const sim = await startSimulator({
    stateDir: `${dir.path}/sim`,
    onRequest: (r) => requests.push(r),
  });
  const config = simulatorConfig(sim);
  writeProxmoxConfig(`${dir.path}/pve.json`, config);
  const pve = createProxmoxClient(clientOptionsFromConfig(config));
  const serve = () =>
    startServer({
      dir: dir.path,
      backend: "proxmox",
      config: `${dir.path}/pve.json`,
      fakeNode: true,
    });
  try {
    const first = await serve();
    const cri = await connect(first.socket);
    const podConfig = {
      metadata: { name: "term", uid: "term-uid", namespace: "e2e", attempt: 0 },
      hostname: "term",
      log_directory: `${dir.path}/pods/term`,
    };
    await cri.image.PullImage({ image: { image } });
    const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config: podConfig });
    // Each create's task outlasts the shutdown's wait for work in flight (5 s).
    sim.faults.add({ method: "POST", path: "/nodes/*/lxc", taskDelayMs: 8_000, times: 3 });
    const names = ["a", "b", "c"];
    const calls = names.map((name) =>
      cri.runtime.CreateContainer({
        pod_sandbox_id,
        config: {
          metadata: { name, attempt: 0 },
          image: { image },
          command: ["/bin/sh", "-c", "sleep 3600"],
          log_path: `${name}.log`,
        },
        sandbox_config: podConfig,
      }).catch((error: unknown) => error)
    );
    const creates = () => requests.filter((r) => r.method === "POST" && r.path.endsWith("/lxc"));
    await until("three creates sent", () => creates().length === 3 || undefined);

    const stopped = await first.stop("SIGTERM");
    assert.equal(stopped.code, 0, first.stderr());
    await Promise.all(calls);
    cri.close();
    const left = containerStates(first.stateDir);
    assert.equal(left.size, 3);
    for (const [id, state] of left) {
      assert.ok(!machines.container.isSettled(state), `${id} left ${state}: resumable`);
    }

    await using second = await serve();
    const again = await connect(second.socket);
    try {
      const created = await until("the creates finished", async () => {
        const { containers } = await again.runtime.ListContainers({});
        const done = containers.filter((c: { state: string }) => c.state === "CONTAINER_CREATED");
        return done.length === 3 ? done : undefined;
      });
      assert.deepEqual(
        created.map((c: { metadata: { name: string } }) => c.metadata.name).sort(),
        names,
      );
      assert.equal(creates().length, 3, "no create sent again");
      assert.equal((await pve.listCts()).length, 3);
      await assertStateTrue(again, pve);
    } finally {
      again.close();
    }
  } finally {
    pve.close();
    await sim.close();
  }
}
