/**
 * pve-cri serving CRI against a Proxmox API (the test's own simulator) with the node and CNI
 * stand-ins: for tests about the CRI surface and the Proxmox calls, not about processes. A
 * real `--backend proxmox` never takes stand-ins; only this test program passes them.
 * Prints the serving line once it listens; SIGTERM stops it.
 *
 *   deno run --allow-all tests/_support/fake_node_server.ts SOCKET STATE_DIR CONFIG_FILE
 */
import { startCriServer } from "../../adapters/cri/grpc_server.ts";
import { criHandlers } from "../../adapters/cri/handlers.ts";
import { FakeCni } from "../../adapters/cni/fake_cni.ts";
import { FakeNode } from "../../adapters/node/fake_node.ts";
import { rootLogger } from "../../lib/log.ts";
import { openRuntime } from "../../runtime/open_runtime.ts";

const [socket, stateDir, configFile] = Deno.args;
if (configFile === undefined) {
  throw new TypeError("Usage: fake_node_server.ts SOCKET STATE_DIR CONFIG_FILE");
}
const log = rootLogger.with({ component: "pve-cri" });
const opened = await openRuntime({
  stateDir: stateDir!,
  backend: "proxmox",
  configFile,
  log,
  version: "0.1.0",
  node: new FakeNode(),
  cni: new FakeCni(),
});
const cri = await startCriServer({
  socketPath: socket!,
  handlers: criHandlers(opened.runtime),
  isReady: () => !opened.registry.closed,
  log,
});
Deno.stdout.writeSync(
  new TextEncoder().encode(`pve-cri serving CRI on unix://${socket} (backend proxmox)\n`),
);
Deno.addSignalListener("SIGTERM", async () => {
  await cri.close();
  await opened.close();
  Deno.exit(0);
});
