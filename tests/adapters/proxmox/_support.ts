/**
 * A simulator per test over real HTTPS, a client for it, and the contract check: every
 * request the client sends (and every answer) is checked against apidoc.json when it is
 * there. Disposing stops everything, removes the state dir, and fails the test if any
 * request or answer broke the schema.
 */
import { Logger, silentLogger } from "../../../lib/log.ts";
import {
  createProxmoxClient,
  type ProxmoxClient,
  type ProxmoxClientOptions,
} from "../../../adapters/proxmox/mod.ts";
import { buildImage, ociLayoutArchive } from "../../_support/oci_images.ts";
import {
  type OciPuller,
  type RequestRecord,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from "../../../adapters/proxmox/sim/mod.ts";
import { checkRequest, checkResponse, loadApidoc } from "./_apidoc.ts";

export interface TestEnv extends AsyncDisposable {
  sim: Simulator;
  dir: string;
  /** Requests the simulator saw, in order. */
  requests: RequestRecord[];
  /** A token-authenticated client trusting the simulator's CA (options override). */
  client(options?: Partial<ProxmoxClientOptions>): ProxmoxClient;
  /** Puts a template file into `local:vztmpl/` and returns its volid. */
  template(name?: string): string;
  /** Restarts the simulator on the same state dir (after `sim.crash()` or `sim.close()`). */
  restart(options?: Partial<SimulatorOptions>): Promise<Simulator>;
}

/** `local` also takes CT disks here, so a create needs no `storage`. */
export const testStorages = [
  { id: "local", type: "dir", content: ["iso", "vztmpl", "backup", "rootdir", "images"] },
  { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"] },
];

export const fastPolling = { initialDelayMs: 0, minIntervalMs: 2, maxIntervalMs: 20 };

export async function testEnv(options: Partial<SimulatorOptions> = {}): Promise<TestEnv> {
  const dir = Deno.makeTempDirSync({ prefix: "pve-cri-proxmox-" });
  const requests: RequestRecord[] = [];
  const problems: string[] = [];
  const apidoc = loadApidoc();
  const onRequest = (record: RequestRecord) => {
    requests.push(record);
    if (apidoc === undefined) return;
    // A request the simulator refused as invalid (400) or unknown (501) was sent so on purpose
    // by the test; the contract test holds the simulator's own validation to the schema.
    if (record.status !== 400 && record.status !== 501) {
      problems.push(...checkRequest(apidoc, record));
    }
    if (record.status === 200) {
      problems.push(...checkResponse(apidoc, record.method, record.path, record.data));
    }
  };
  const simOptions = {
    stateDir: dir,
    onRequest,
    storages: testStorages,
    puller: archivePuller(),
    ...options,
  };
  const clients: ProxmoxClient[] = [];
  const env: TestEnv = {
    sim: await startSimulator(simOptions),
    dir,
    requests,
    client(overrides = {}) {
      const client = createProxmoxClient({
        url: env.sim.url,
        node: env.sim.node,
        auth: { tokenId: env.sim.token.tokenid, secret: env.sim.token.secret },
        tls: { caPem: env.sim.caPem },
        logger: silentLogger,
        polling: fastPolling,
        retryDelayMs: 5,
        ...overrides,
      });
      clients.push(client);
      return client;
    },
    template(name = "debian-12-standard_12.7-1_amd64.tar.zst") {
      const cache = `${dir}/storage/local/template/cache`;
      Deno.mkdirSync(cache, { recursive: true });
      Deno.writeTextFileSync(`${cache}/${name}`, "template");
      return `local:vztmpl/${name}`;
    },
    async restart(overrides = {}) {
      env.sim = await startSimulator({ ...simOptions, ...overrides });
      return env.sim;
    },
    async [Symbol.asyncDispose]() {
      for (const client of clients) client.close();
      await env.sim.close().catch(() => undefined);
      Deno.removeSync(dir, { recursive: true });
      if (problems.length > 0) {
        throw new Error(`Requests or answers outside apidoc.json:\n${problems.join("\n")}`);
      }
    },
  };
  return env;
}

/**
 * A puller for tests about the API around `oci-registry-pull` (names, tasks, lost answers):
 * it writes a small real OCI archive for any reference, as skopeo would after a download.
 * The oci_image tests pull from a real registry with skopeo instead.
 */
export function archivePuller(config: Record<string, unknown> = { Cmd: ["/bin/sh"] }): OciPuller {
  return {
    unavailable: () => undefined,
    pull({ path, log }) {
      log.log("Copying image (test archive)");
      const image = buildImage({ layers: [{ files: { "hello": { data: "hi\n" } } }], config });
      Deno.writeFileSync(path, ociLayoutArchive(image));
      return Promise.resolve();
    },
  };
}

/** A logger whose lines are kept, to check what was logged. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger("debug", {}, { write: (line) => lines.push(line) }), lines };
}

/** Waits for a task through the client and returns its exit status. */
export async function settle(
  client: ProxmoxClient,
  upid: Promise<string> | string,
): Promise<string> {
  return (await client.waitForTask(await upid)).exitstatus ?? "";
}
