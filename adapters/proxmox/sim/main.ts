// deno-lint-ignore-file no-console
/**
 * `deno task sim --listen ADDR --state-dir DIR [--config-out FILE] [--node NAME] [--insecure]
 *  [--driver memory|lxc] [--vmids LOWER-UPPER]`: runs the simulator on its own and prints its
 * URL, a ready-made API token and the CA fingerprint (or writes them as a config file for
 * `deno task start --backend proxmox`), until SIGINT/SIGTERM. With `--driver lxc` its CTs are
 * real LXC containers (root), and the config file says where pve-cri finds them.
 */
import { parseCommandLine } from "../../../lib/command_line.ts";
import { rootLogger } from "../../../lib/log.ts";
import { dirname, resolve } from "node:path";
import { LxcDriver } from "./lxc_driver.ts";
import { simulatorConfig } from "./mod.ts";
import { startSimulator } from "./simulator.ts";

const usage = `Usage: deno task sim --state-dir DIR [OPTIONS]

A simulated Proxmox VE 9.1 node on its own, until SIGINT or SIGTERM; prints its URL, an API
token and the CA fingerprint.

  --state-dir DIR      where its CTs, tasks and storage are kept (required)
  --listen HOST:PORT   default 127.0.0.1:8006
  --config-out FILE    write a config file for deno task start --backend proxmox
  --node NAME          the node's name (default pve1, fixed at the first start)
  --insecure           plain HTTP instead of HTTPS
  --driver memory|lxc  lxc: CTs are real LXC containers (root); default memory
  --vmids LOWER-UPPER  the cluster's next-id range
  -h, --help           this text`;

let line;
try {
  line = parseCommandLine(Deno.args, {
    listen: { type: "string", default: "127.0.0.1:8006" },
    "state-dir": { type: "string" },
    "config-out": { type: "string" },
    node: { type: "string" },
    insecure: { type: "boolean", default: false },
    driver: { type: "string", default: "memory" },
    vmids: { type: "string" },
  });
} catch (error) {
  console.error(`pve-cri sim: ${(error as Error).message}`);
  Deno.exit(2);
}
if (line.help) {
  console.log(usage);
  Deno.exit(0);
}
const { values } = line;
const stateDir = values["state-dir"];
if (stateDir === undefined) {
  console.error(`pve-cri sim: --state-dir is required (see --help)`);
  Deno.exit(2);
}
const listen = /^(.*):(\d+)$/.exec(values.listen!);
if (listen === null) {
  console.error(`--listen must be HOST:PORT, got "${values.listen}"`);
  Deno.exit(2);
}
if (values.driver !== "memory" && values.driver !== "lxc") {
  console.error(`--driver must be memory or lxc, got "${values.driver}"`);
  Deno.exit(2);
}
const range = values.vmids === undefined ? undefined : /^(\d+)-(\d+)$/.exec(values.vmids);
if (range === null) {
  console.error(`--vmids must be LOWER-UPPER, got "${values.vmids}"`);
  Deno.exit(2);
}
const lxcpath = `${resolve(stateDir)}/lxc-containers`;
const sim = await startSimulator({
  ...(values.driver === "lxc" ? { driver: new LxcDriver({ lxcpath }) } : {}),
  ...(range === undefined ? {} : { nextId: { lower: Number(range[1]), upper: Number(range[2]) } }),
  stateDir,
  hostname: listen[1]!.replace(/^\[(.*)\]$/, "$1"),
  port: Number(listen[2]),
  insecure: values.insecure,
  logger: rootLogger.with({ component: "proxmox-sim" }),
  ...(values.node === undefined ? {} : { node: values.node }),
});
if (values["config-out"] !== undefined) {
  // The node side of pve-cri finds the CTs where this simulator keeps them.
  const lxc = values.driver === "lxc"
    ? { lxc: { lxcpath, pveConfigDir: dirname(sim.configPath(100)) } }
    : {};
  Deno.writeTextFileSync(
    values["config-out"],
    JSON.stringify({ ...simulatorConfig(sim), ...lxc }, null, 2) + "\n",
    { mode: 0o600 },
  );
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
