// deno-lint-ignore-file no-console
/**
 * `deno task sim --listen ADDR --state-dir DIR [--config-out FILE] [--node NAME] [--insecure]`:
 * runs the simulator on its own and prints its URL, a ready-made API token and the CA
 * fingerprint (or writes them as a Proxmox config file), until SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { rootLogger } from "../../../lib/log.ts";
import { writeProxmoxConfig } from "../config.ts";
import { simulatorConfig } from "./mod.ts";
import { startSimulator } from "./simulator.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    listen: { type: "string", default: "127.0.0.1:8006" },
    "state-dir": { type: "string" },
    "config-out": { type: "string" },
    node: { type: "string" },
    insecure: { type: "boolean", default: false },
  },
});
const stateDir = values["state-dir"];
if (stateDir === undefined) {
  console.error("usage: deno task sim --listen ADDR --state-dir DIR [--config-out FILE]");
  Deno.exit(2);
}
const listen = /^(.*):(\d+)$/.exec(values.listen);
if (listen === null) {
  console.error(`--listen must be HOST:PORT, got "${values.listen}"`);
  Deno.exit(2);
}
const sim = await startSimulator({
  stateDir,
  hostname: listen[1]!.replace(/^\[(.*)\]$/, "$1"),
  port: Number(listen[2]),
  insecure: values.insecure,
  logger: rootLogger.with({ component: "proxmox-sim" }),
  ...(values.node === undefined ? {} : { node: values.node }),
});
if (values["config-out"] !== undefined) {
  writeProxmoxConfig(values["config-out"], simulatorConfig(sim));
  console.log(`config: ${values["config-out"]}`);
}
console.log(`url: ${sim.url}`);
console.log(`node: ${sim.node}`);
console.log(`token: ${sim.token.tokenid}=${sim.token.secret}`);
console.log(`fingerprint: ${sim.fingerprint}`);
console.log(`ca: ${sim.caFile}`);

const stop = async () => {
  await sim.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
