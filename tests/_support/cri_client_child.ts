/**
 * A CRI client in its own process that starts `count` slow RunPodSandbox calls and prints
 * "started" once they are sent; the test then kills it with the calls in flight.
 *
 *   deno run --allow-all tests/_support/cri_client_child.ts SOCKET_PATH COUNT
 */
import { connect } from "./cri_client.ts";

const [socketPath, count = "50"] = Deno.args;
if (socketPath === undefined) throw new TypeError("Usage: cri_client_child.ts SOCKET_PATH COUNT");
const client = await connect(socketPath);
for (let i = 0; i < Number(count); i++) {
  client.runtime.RunPodSandbox({ config: { metadata: { attempt: 5_000 } } }).catch(() => {});
}
await new Promise((resolve) => setTimeout(resolve, 50));
Deno.stdout.writeSync(new TextEncoder().encode("started\n"));
setInterval(() => {}, 1_000);
