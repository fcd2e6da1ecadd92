/**
 * A CRI server alone in its own process, for tests that must survive whatever its clients do
 * (a crash would take the test runner down with it if it ran in-process). Serves Version, and
 * RunPodSandbox answering after `delay_ms` from its request's `config.metadata.attempt`.
 * Prints "ready" on stdout once it listens; runs until killed.
 *
 *   deno run --allow-all tests/_support/cri_server_child.ts SOCKET_PATH
 */
import { startCriServer } from "../../adapters/cri/grpc_server.ts";
import type { UnaryHandler } from "../../adapters/cri/rpc.ts";
import { Logger } from "../../lib/log.ts";

const socketPath = Deno.args[0];
if (socketPath === undefined) throw new TypeError("Usage: cri_server_child.ts SOCKET_PATH");

const slow: UnaryHandler = (request, ctx) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => resolve({ pod_sandbox_id: "done" }),
      request.config?.metadata?.attempt ?? 0,
    );
    ctx.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(ctx.signal.reason);
    });
  });

await startCriServer({
  socketPath,
  handlers: {
    runtime: {
      Version: () => Promise.resolve({ version: "0.1.0", runtime_name: "pve-cri" }),
      RunPodSandbox: slow,
    },
    image: {},
  },
  isReady: () => true,
  log: new Logger("warn"),
});
Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
