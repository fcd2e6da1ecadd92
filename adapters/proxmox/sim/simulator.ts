/**
 * Starts a simulated Proxmox VE node: state under one directory, a real HTTPS server on a
 * loopback port, and the same REST API a real node serves. `deno task start` embeds it; tests
 * start one each; `deno task sim` runs one on its own.
 */
import { join } from "node:path";
import { type Logger, silentLogger } from "../../../lib/log.ts";
import { Access, newSigningKey, newTokenSecret, type SimToken, type SimUser } from "./access.ts";
import { clusterEndpoints } from "./cluster_endpoints.ts";
import { CtStore } from "./ct_store.ts";
import { rawLineError } from "./ct_config.ts";
import { type CtOp, runCtOp } from "./ct_workers.ts";
import type { CtDriver } from "./driver.ts";
import type { Endpoint, SimNode } from "./endpoint.ts";
import { FaultInjector, type FaultRule } from "./faults.ts";
import { readJsonIfExists, readTextIfExists, removeIfExists, writeFileAtomic } from "./files.ts";
import { lxcEndpoints } from "./lxc_endpoints.ts";
import { MemoryDriver } from "./memory_driver.ts";
import { type OciPuller, skopeoPuller } from "./oci_puller.ts";
import { loadOrCreatePki } from "./pki.ts";
import { Router } from "./router.ts";
import { type RequestRecord, startServer } from "./server.ts";
import { defaultStorages, SimStorage, type StorageDefinition } from "./storage.ts";
import { storageEndpoints } from "./storage_endpoints.ts";
import { taskEndpoints } from "./task_endpoints.ts";
import { TaskManager } from "./tasks.ts";

export interface SimulatorOptions {
  /** Where everything is kept; a restarted simulator on the same dir finds its CTs. */
  stateDir: string;
  /** Node name (default `pve1`; fixed at first start). */
  node?: string;
  /** Listen address (default 127.0.0.1) and port (default 0: any free port). */
  hostname?: string;
  port?: number;
  /** Serve plain HTTP instead of HTTPS. */
  insecure?: boolean;
  /** Users and API tokens besides the ready-made `root@pam` and `root@pam!pve-cri`. */
  users?: readonly SimUser[];
  tokens?: readonly SimToken[];
  /** What makes CTs exist (default: a memory driver under the state dir). */
  driver?: CtDriver;
  /**
   * The cluster's VMID range for `nextid` (datacenter.cfg `next-id: lower=…,upper=…`), kept in
   * the state dir. Real CTs are named by VMID host-wide, so simulators sharing a host need
   * ranges of their own.
   */
  nextId?: { lower: number; upper: number };
  storages?: readonly StorageDefinition[];
  faults?: readonly FaultRule[];
  puller?: OciPuller;
  logger?: Logger;
  /** The node's clock (ms); tickets and UPIDs use it. */
  now?: () => number;
  /** Sees every API request once its answer is made. */
  onRequest?: (record: RequestRecord) => void;
  authFailureDelayMs?: number;
}

/** Credentials and identity the simulator made at its first start and keeps. */
interface SimIdentity {
  node: string;
  rootPassword: string;
  token: SimToken;
  /** Base64 of the ticket signing key. */
  authKey: string;
}

export interface Simulator {
  /** e.g. `https://127.0.0.1:40123` (the API is below `/api2/json`). */
  readonly url: string;
  readonly node: string;
  /** `pve-root-ca.pem` to trust, and the node certificate's SHA-256 fingerprint. */
  readonly caPem: string;
  readonly caFile: string;
  readonly fingerprint: string;
  /** A ready-made API token (`root@pam!pve-cri`) and the root@pam password. */
  readonly token: SimToken;
  readonly rootPassword: string;
  readonly faults: FaultInjector;
  readonly access: Access;
  readonly driver: CtDriver;
  /** Path of a CT's config file (what `/etc/pve/lxc/<vmid>.conf` is on a node). */
  configPath(vmid: number): string;
  /** Adds a raw `lxc.*` line to a CT's config as root on the node would; refuses what PVE refuses. */
  addRawConfigLine(vmid: number, key: string, value: string): void;
  /** Resolves when no task is running. */
  idle(): Promise<void>;
  /** Stops serving and waits for running tasks. */
  close(): Promise<void>;
  /** Stops serving at once and abandons running tasks, as a killed process would. */
  crash(): Promise<void>;
}

export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const stateDir = options.stateDir;
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  Deno.mkdirSync(stateDir, { recursive: true });
  // Uploads a killed simulator was receiving are gone with it.
  removeIfExists(join(stateDir, "tmp"), true);
  const identity = loadOrCreateIdentity(join(stateDir, "sim.json"), options.node ?? "pve1");
  const hostname = options.hostname ?? "127.0.0.1";
  const pki = await loadOrCreatePki(join(stateDir, "pki"), {
    node: identity.node,
    hosts: [...new Set([hostname, "127.0.0.1", "::1", "localhost", identity.node])],
  });
  const access = new Access({
    users: [{ userid: "root@pam", password: identity.rootPassword }, ...(options.users ?? [])],
    tokens: [identity.token, ...(options.tokens ?? [])],
    key: Uint8Array.from(atob(identity.authKey), (c) => c.charCodeAt(0)),
    now,
  });
  const driver = options.driver ?? new MemoryDriver({ dir: join(stateDir, "driver"), now });
  const node: SimNode = {
    name: identity.node,
    cts: new CtStore(join(stateDir, "lxc"), identity.node),
    tasks: new TaskManager({ node: identity.node, dir: join(stateDir, "tasks"), logger, now }),
    storage: new SimStorage(join(stateDir, "storage"), options.storages ?? defaultStorages),
    driver,
    access,
    faults: new FaultInjector(options.faults),
    puller: options.puller ?? skopeoPuller(),
    logger,
    now,
  };
  const nextId = datacenterNextId(join(stateDir, "datacenter.cfg"), options.nextId);
  const router = new Router(endpointDefinitions(node, pki.fingerprint, nextId));
  node.tasks.resumeInterrupted((record) => {
    const op = record.resume as CtOp | undefined;
    return op === undefined ? undefined : (context) => runCtOp(node, op, context);
  });
  const server = startServer(
    {
      node,
      router,
      logger,
      uploadDir: join(stateDir, "tmp"),
      ...(options.insecure ? {} : { tls: { cert: pki.certPem, key: pki.keyPem } }),
      ...(options.onRequest === undefined ? {} : { onRequest: options.onRequest }),
      ...(options.authFailureDelayMs === undefined
        ? {}
        : { authFailureDelayMs: options.authFailureDelayMs }),
    },
    { hostname, port: options.port ?? 0 },
  );
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = `${options.insecure ? "http" : "https"}://${host}:${server.port}`;
  logger.info("proxmox simulator listening", { url, node: identity.node });
  return {
    url,
    node: identity.node,
    caPem: pki.caPem,
    caFile: join(stateDir, "pki", "pve-root-ca.pem"),
    fingerprint: pki.fingerprint,
    token: identity.token,
    rootPassword: identity.rootPassword,
    faults: node.faults,
    access,
    driver,
    configPath: (vmid) => node.cts.path(vmid),
    addRawConfigLine(vmid, key, value) {
      const error = rawLineError(vmid, key, `${key}: ${value}`);
      if (error !== undefined) throw new Error(error);
      const parsed = node.cts.load(vmid);
      parsed.config.lxc.push([key, value]);
      node.cts.write(vmid, parsed.config);
    },
    idle: () => node.tasks.idle(),
    async close() {
      await server.close();
      await node.tasks.idle();
      node.tasks.close();
      node.storage.close();
      await driver.close();
    },
    async crash() {
      node.tasks.abandon();
      await server.close();
      await node.tasks.idle();
      node.tasks.close();
      node.storage.close();
      await driver.close();
    },
  };
}

/** Every API operation the simulator serves (the contract test checks them against the schema). */
export function endpointDefinitions(
  node: SimNode,
  fingerprint: string,
  nextId?: { lower: number; upper: number },
): Endpoint[] {
  return [
    ...clusterEndpoints(node, {
      fingerprint,
      ...(nextId === undefined ? {} : { nextIdLower: nextId.lower, nextIdUpper: nextId.upper }),
    }),
    ...lxcEndpoints(node),
    ...taskEndpoints(node),
    ...storageEndpoints(node),
  ];
}

/** The `next-id` range: given ones are written to datacenter.cfg, else it is read from there. */
function datacenterNextId(
  path: string,
  given: { lower: number; upper: number } | undefined,
): { lower: number; upper: number } | undefined {
  if (given !== undefined) {
    writeFileAtomic(path, `next-id: lower=${given.lower},upper=${given.upper}\n`, 0o640);
    return given;
  }
  const text = readTextIfExists(path) ?? "";
  const match = /^next-id:\s*lower=(\d+),upper=(\d+)\s*$/m.exec(text);
  return match === null ? undefined : { lower: Number(match[1]), upper: Number(match[2]) };
}

function loadOrCreateIdentity(path: string, node: string): SimIdentity {
  const existing = readJsonIfExists<SimIdentity>(path);
  if (existing !== undefined) return existing;
  const identity: SimIdentity = {
    node,
    rootPassword: newTokenSecret(),
    token: { tokenid: "root@pam!pve-cri", secret: newTokenSecret() },
    authKey: btoa(String.fromCharCode(...newSigningKey())),
  };
  writeFileAtomic(path, JSON.stringify(identity, null, 2) + "\n", 0o600);
  return identity;
}
