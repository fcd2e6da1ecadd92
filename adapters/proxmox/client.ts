/**
 * The Proxmox VE REST client: `ProxmoxApi` over HTTPS, for a real cluster and the simulator
 * alike. Reads retry on transport failures; writes whose answer was lost are checked before
 * anything is sent again (see write_recovery.ts).
 */
import { type Logger, rootLogger } from "../../lib/log.ts";
import { InvalidArgumentError, type RuntimeError } from "../../lib/errors.ts";
import type {
  ClusterResource,
  CreateCtParams,
  CtConfig,
  CtListEntry,
  CtRef,
  CtStatus,
  ProxmoxApi,
  PveVersion,
  StorageVolume,
  StreamedBody,
  TaskLogLine,
  TaskStatus,
  UpdateCtConfigParams,
  WaitOptions,
} from "./api.ts";
import {
  type AuthConfig,
  type Authenticator,
  TicketAuthenticator,
  type TicketGrant,
  TokenAuthenticator,
} from "./auth.ts";
import { PveAlreadyExistsError, PveNotFoundError, PveRootRequiredError } from "./errors.ts";
import { ctOptionsToParams, type WireParams } from "./params.ts";
import { redactor } from "./redact.ts";
import { type CallOptions, Requester, WriteOutcomeUnknown } from "./request.ts";
import { rootOnlyReason } from "./root_only.ts";
import { defaultPolling, type PollingOptions, waitForTask } from "./tasks.ts";
import { Http1Transport, type Transport } from "./transport.ts";
import type { TlsOptions } from "./tls.ts";
import { parseUpid } from "./upid.ts";
import { type LostWrite, recoverLostWrite, type TaskListEntry } from "./write_recovery.ts";

export interface ProxmoxClientOptions {
  /** `https://host:8006` (the API path is added). */
  url: string;
  /** The node CT operations go to. */
  node: string;
  auth: AuthConfig;
  tls?: TlsOptions;
  logger?: Logger;
  /** Per request (default 30 s). */
  requestTimeoutMs?: number;
  /** Attempts for a read on transport failures (default 3). */
  readAttempts?: number;
  /** Attempts for a request that could not connect (default 7: 6.3 s of backoff at 100 ms). */
  connectAttempts?: number;
  /** Attempts for a request that met a config file lock held elsewhere (default 3). */
  lockAttempts?: number;
  retryDelayMs?: number;
  polling?: Partial<PollingOptions>;
  /** How far the node's clock may lag ours when matching tasks (default 120 s). */
  maxClockSkewSeconds?: number;
  /** Attempts at `createCtWithNextId` when another create takes the vmid (default 5). */
  vmidAttempts?: number;
  now?: () => number;
  /** Replaces the HTTP transport (tests). */
  transport?: Transport;
}

/** Creates the client the runtime talks to Proxmox through. */
export function createProxmoxClient(options: ProxmoxClientOptions): ProxmoxClient {
  return new ProxmoxClient(options);
}

export class ProxmoxClient implements ProxmoxApi {
  readonly node: string;
  readonly #options: ProxmoxClientOptions;
  readonly #transport: Transport;
  readonly #auth: Authenticator;
  readonly #requester: Requester;
  readonly #polling: PollingOptions;
  readonly #logger: Logger;

  constructor(options: ProxmoxClientOptions) {
    this.node = options.node;
    this.#options = options;
    this.#logger = (options.logger ?? rootLogger).with({ component: "proxmox" });
    this.#transport = options.transport ?? new Http1Transport(options.url, options.tls ?? {});
    this.#auth = createAuthenticator(options.auth, (request) => this.#login(request), options.now);
    const redact = redactor(() => this.#auth.secrets());
    this.#requester = new Requester({
      transport: this.#transport,
      auth: this.#auth,
      logger: this.#logger,
      redact,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      readAttempts: options.readAttempts ?? 3,
      connectAttempts: options.connectAttempts ?? 7,
      lockAttempts: options.lockAttempts ?? 3,
      retryDelayMs: options.retryDelayMs ?? 100,
    });
    this.#polling = { ...defaultPolling, ...options.polling };
  }

  /** The user Proxmox sees (`user@realm!token` for API tokens). */
  get userid(): string {
    return this.#auth.userid;
  }

  async version(): Promise<PveVersion> {
    return await this.#get<PveVersion>("/version");
  }

  async nextVmid(): Promise<number> {
    // Documented as integer, commonly sent as a string.
    return Number(await this.#get<string | number>("/cluster/nextid"));
  }

  async vmidRange(): Promise<{ lower: number; upper: number }> {
    // Options come back parsed; without Sys.Audit some are left out: then PVE's defaults.
    const options = await this.#get<Record<string, unknown>>("/cluster/options");
    const range = options["next-id"] as { lower?: unknown; upper?: unknown } | undefined;
    const lower = Number(range?.lower ?? 100);
    const upper = Number(range?.upper ?? 1_000_000);
    return Number.isInteger(lower) && Number.isInteger(upper) && lower < upper
      ? { lower, upper }
      : { lower: 100, upper: 1_000_000 };
  }

  async createCt(params: CreateCtParams): Promise<string> {
    const { vmid, node = this.node, ostemplate, storage, start, password, ...options } = params;
    const wire: WireParams = {
      vmid,
      ostemplate,
      storage,
      start,
      password,
      ...ctOptionsToParams(options),
    };
    this.#checkRootOnly(wire, `create CT ${vmid}`);
    return await this.#asyncWrite("POST", `/nodes/${node}/lxc`, wire, {
      node,
      type: "vzcreate",
      vmid,
      goalReached: async () => (await this.#configIfExists({ vmid, node })) !== undefined,
    });
  }

  async createCtWithNextId(
    params: Omit<CreateCtParams, "vmid">,
  ): Promise<{ vmid: number; upid: string }> {
    const attempts = this.#options.vmidAttempts ?? 5;
    for (let attempt = 1;; attempt++) {
      const vmid = await this.nextVmid();
      try {
        return { vmid, upid: await this.createCt({ ...params, vmid }) };
      } catch (error) {
        // nextid reserves nothing: a concurrent create may take the same vmid first.
        if (!(error instanceof PveAlreadyExistsError) || attempt >= attempts) throw error;
        this.#logger.debug("vmid taken by a concurrent create, trying the next", { vmid });
      }
    }
  }

  async startCt(ref: CtRef): Promise<string> {
    const node = ref.node ?? this.node;
    return await this.#asyncWrite("POST", `${ctPath(node, ref.vmid)}/status/start`, {}, {
      node,
      type: "vzstart",
      vmid: ref.vmid,
      goalReached: async () => (await this.ctStatus(ref)).status === "running",
    });
  }

  async stopCt(ref: CtRef & { overruleShutdown?: boolean }): Promise<string> {
    const node = ref.node ?? this.node;
    const params = { "overrule-shutdown": ref.overruleShutdown };
    return await this.#asyncWrite("POST", `${ctPath(node, ref.vmid)}/status/stop`, params, {
      node,
      type: "vzstop",
      vmid: ref.vmid,
      goalReached: async () => (await this.ctStatus(ref)).status === "stopped",
    });
  }

  async shutdownCt(ref: CtRef & { timeout?: number; forceStop?: boolean }): Promise<string> {
    const node = ref.node ?? this.node;
    const params = { timeout: ref.timeout, forceStop: ref.forceStop };
    return await this.#asyncWrite("POST", `${ctPath(node, ref.vmid)}/status/shutdown`, params, {
      node,
      type: "vzshutdown",
      vmid: ref.vmid,
      goalReached: async () => (await this.ctStatus(ref)).status === "stopped",
    });
  }

  async destroyCt(ref: CtRef & { force?: boolean; purge?: boolean }): Promise<string> {
    const node = ref.node ?? this.node;
    const params = { force: ref.force, purge: ref.purge };
    return await this.#asyncWrite("DELETE", ctPath(node, ref.vmid), params, {
      node,
      type: "vzdestroy",
      vmid: ref.vmid,
      goalReached: async () => (await this.#configIfExists(ref)) === undefined,
    });
  }

  async ctStatus(ref: CtRef): Promise<CtStatus> {
    return await this.#get<CtStatus>(`${ctPath(ref.node ?? this.node, ref.vmid)}/status/current`);
  }

  async ctConfig(ref: CtRef): Promise<CtConfig> {
    return await this.#get<CtConfig>(`${ctPath(ref.node ?? this.node, ref.vmid)}/config`);
  }

  async updateCtConfig(params: UpdateCtConfigParams): Promise<void> {
    const node = params.node ?? this.node;
    const wire: WireParams = {
      ...ctOptionsToParams(params.set ?? {}),
      ...(params.delete === undefined ? {} : { delete: params.delete.join(",") }),
      digest: params.digest,
    };
    this.#checkRootOnly(wire, `update CT ${params.vmid}`);
    const path = `${ctPath(node, params.vmid)}/config`;
    try {
      await this.#requester.call("PUT", path, wire);
    } catch (error) {
      if (!(error instanceof WriteOutcomeUnknown)) throw error;
      // PUT config is synchronous: the config itself shows whether it was applied.
      const config = await this.ctConfig(params);
      if (configShows(config, wire)) return;
      await this.#requester.call("PUT", path, wire).catch(unwrapLost);
    }
  }

  async listCts(node = this.node): Promise<CtListEntry[]> {
    return await this.#get<CtListEntry[]>(`/nodes/${node}/lxc`);
  }

  async clusterResources(type?: "vm" | "storage" | "node" | "sdn"): Promise<ClusterResource[]> {
    return await this.#get<ClusterResource[]>("/cluster/resources", { type });
  }

  async listStorageContent(
    params: { storage: string; content?: string; vmid?: number; node?: string },
  ): Promise<StorageVolume[]> {
    const node = params.node ?? this.node;
    return await this.#get<StorageVolume[]>(
      `/nodes/${node}/storage/${encodeURIComponent(params.storage)}/content`,
      { content: params.content, vmid: params.vmid },
    );
  }

  async uploadToStorage(params: {
    storage: string;
    filename: string;
    data: Uint8Array | StreamedBody;
    content?: "vztmpl" | "iso" | "import";
    node?: string;
  }): Promise<string> {
    const node = params.node ?? this.node;
    const path = `/nodes/${node}/storage/${encodeURIComponent(params.storage)}/upload`;
    const file = { field: "filename", filename: params.filename, data: params.data };
    const content = params.content ?? "vztmpl";
    const volid = `${params.storage}:${content}/${normalizeFilename(params.filename)}`;
    // A large upload takes its time: the limit grows with the size (at 5 MB/s at worst).
    const timeoutMs = (this.#options.requestTimeoutMs ?? 30_000) +
      Math.ceil(params.data.length / 5_000);
    return await this.#asyncWrite("POST", path, { content }, {
      node,
      type: "imgcopy",
      goalReached: async () =>
        (await this.listStorageContent({ storage: params.storage, node }))
          .some((v) => v.volid === volid),
    }, { file, timeoutMs });
  }

  async deleteVolume(
    params: { volid: string; node?: string; delay?: number },
  ): Promise<string | null> {
    const node = params.node ?? this.node;
    const storage = params.volid.slice(0, params.volid.indexOf(":"));
    const path = `/nodes/${node}/storage/${encodeURIComponent(storage)}/content/${
      encodeURIComponent(params.volid)
    }`;
    const wire = { delay: params.delay };
    const sentAt = this.#now();
    try {
      return (await this.#requester.call<string | null>("DELETE", path, wire)).data;
    } catch (error) {
      if (!(error instanceof WriteOutcomeUnknown)) throw error;
      const gone = async () =>
        !(await this.listStorageContent({ storage, node })).some((v) => v.volid === params.volid);
      return await recoverLostWrite<string | null>(this.#recovery(), {
        node,
        type: "imgdel",
        sentAt,
        goalReached: gone,
        // Gone without a task of ours in the list: deleted (a task since pruned); nothing to do.
        resend: async () =>
          await gone()
            ? null
            : (await this.#requester.call<string | null>("DELETE", path, wire).catch(unwrapLost))
              .data,
      }, error);
    }
  }

  async pullOciImage(
    params: { storage: string; reference: string; filename?: string; node?: string },
  ): Promise<{ upid: string; volid: string }> {
    const node = params.node ?? this.node;
    const file = `${normalizeFilename(params.filename ?? params.reference)}.tar`;
    const path = `/nodes/${node}/storage/${encodeURIComponent(params.storage)}/oci-registry-pull`;
    const upid = await this.#asyncWrite("POST", path, {
      reference: params.reference,
      filename: params.filename,
    }, {
      node,
      type: "ociregistrypull",
      id: encodeURIComponent(file),
      goalReached: async () =>
        (await this.listStorageContent({ storage: params.storage, node }))
          .some((v) => v.volid === `${params.storage}:vztmpl/${file}`),
    });
    return { upid, volid: `${params.storage}:vztmpl/${file}` };
  }

  async taskStatus(upid: string): Promise<TaskStatus> {
    return await this.#get<TaskStatus>(`${taskPath(upid)}/status`);
  }

  async taskLog(
    upid: string,
    range: { start?: number; limit?: number } = {},
  ): Promise<TaskLogLine[]> {
    return await this.#get<TaskLogLine[]>(`${taskPath(upid)}/log`, {
      start: range.start,
      limit: range.limit,
    });
  }

  async waitForTask(upid: string, options?: WaitOptions): Promise<TaskStatus> {
    return await waitForTask(this, upid, this.#polling, options);
  }

  close(): void {
    this.#transport.close();
  }

  async #get<T>(path: string, params: WireParams = {}): Promise<T> {
    return (await this.#requester.call<T>("GET", path, params)).data;
  }

  async #asyncWrite(
    method: "POST" | "DELETE",
    path: string,
    params: WireParams,
    write: Omit<LostWrite, "sentAt" | "resend">,
    callOptions: CallOptions = {},
  ): Promise<string> {
    const send = async () =>
      (await this.#requester.call<string>(method, path, params, callOptions)).data;
    const sentAt = this.#now();
    try {
      return await send();
    } catch (error) {
      if (!(error instanceof WriteOutcomeUnknown)) throw error;
      return await recoverLostWrite(this.#recovery(), {
        ...write,
        sentAt,
        resend: () => send().catch(unwrapLost),
      }, error);
    }
  }

  #recovery() {
    return {
      listTasks: (
        node: string,
        filter: { vmid?: number; typefilter: string; userfilter: string },
      ) =>
        this.#get<TaskListEntry[]>(`/nodes/${node}/tasks`, { ...filter, source: "all", limit: 20 }),
      userid: this.#auth.userid,
      maxClockSkewSeconds: this.#options.maxClockSkewSeconds ?? 120,
      logger: this.#logger,
    };
  }

  async #configIfExists(ref: CtRef): Promise<CtConfig | undefined> {
    try {
      return await this.ctConfig(ref);
    } catch (error) {
      if (error instanceof PveNotFoundError) return undefined;
      throw error;
    }
  }

  #checkRootOnly(params: WireParams, action: string): void {
    if (this.#auth.isRootTicket) return;
    const reason = rootOnlyReason(params);
    if (reason === undefined) return;
    const how = "tokenId" in this.#options.auth
      ? "API tokens (even root@pam's) never can"
      : `this client is logged in as ${this.#auth.userid}`;
    throw new PveRootRequiredError(
      `Cannot ${action}: ${reason} needs a root@pam ticket (password login as root@pam); ${how}`,
    );
  }

  async #login(request: { username: string; password: string }): Promise<TicketGrant> {
    const result = await this.#requester.call<TicketGrant>("POST", "/access/ticket", request, {
      anonymous: true,
    }).catch((error) => {
      // Logging in twice is harmless: a lost answer is simply asked again.
      if (error instanceof WriteOutcomeUnknown) {
        return this.#requester.call<TicketGrant>("POST", "/access/ticket", request, {
          anonymous: true,
        });
      }
      throw error;
    });
    return result.data;
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }
}

function createAuthenticator(
  auth: AuthConfig,
  login: (request: { username: string; password: string }) => Promise<TicketGrant>,
  now: (() => number) | undefined,
): Authenticator {
  if ("tokenId" in auth) return new TokenAuthenticator(auth.tokenId, auth.secret);
  const username = auth.realm === undefined || auth.username.includes("@")
    ? auth.username
    : `${auth.username}@${auth.realm}`;
  return new TicketAuthenticator({
    username,
    password: auth.password,
    login,
    ...(now === undefined ? {} : { now }),
  });
}

function ctPath(node: string, vmid: number): string {
  return `/nodes/${node}/lxc/${vmid}`;
}

function taskPath(upid: string): string {
  const parsed = parseUpid(upid);
  if (parsed === undefined) throw new InvalidArgumentError(`Not a UPID: "${upid}"`);
  return `/nodes/${parsed.node}/tasks/${encodeURIComponent(upid)}`;
}

/** A second lost answer ends the matter: report the transport error. */
function unwrapLost(error: unknown): never {
  throw error instanceof WriteOutcomeUnknown ? error.error as RuntimeError : error;
}

/** Whether a config already holds every value of a PUT (and none of its deleted keys). */
function configShows(config: CtConfig, wire: WireParams): boolean {
  for (const [key, value] of Object.entries(wire)) {
    if (value === undefined || key === "digest") continue;
    if (key === "delete") {
      if (String(value).split(/[,;]/).some((k) => config[k] !== undefined)) return false;
      continue;
    }
    const expected = typeof value === "boolean" ? (value ? "1" : "0") : String(value);
    if (String(config[key]) !== expected) return false;
  }
  return true;
}

/** pve-storage's normalisation of pulled and uploaded file names. */
export function normalizeFilename(name: string): string {
  return name.replace(/^.*\//, "").replace(/[^a-zA-Z0-9_.-]/g, "_");
}
