/**
 * `/nodes/{node}/lxc…`: list, create, destroy, status, start/stop/shutdown, config. The
 * synchronous checks fail the request (500 with PVE's text); the rest runs as a task.
 */
import type { CtConfig } from "./ct_config.ts";
import { type CtOp, runCtOp, taskTypes, withGeneratedMacs } from "./ct_workers.ts";
import { configToApi, setEnv, statusFields } from "./ct_view.ts";
import type { ApiRequest, Endpoint, SimNode } from "./endpoint.ts";
import { taskFaults } from "./faults.ts";
import { handlerError, PveHttpError } from "./http_error.ts";
import { checkRootOnlyOptions } from "./root_only.ts";
import { lxcConfigOptions, nodeParam, vmidParam } from "./schema/lxc_options.ts";
import type { ParamTable } from "./schema/types.ts";
import type { ParamValue } from "./schema/validate.ts";

const vmPath = { node: nodeParam, vmid: vmidParam } as const;

/** Create-only parameters: they steer the create task and are not written to the config. */
const createControls: ParamTable = {
  bwlimit: { type: "number", optional: true, minimum: 0 },
  force: { type: "boolean", optional: true },
  "ha-managed": { type: "boolean", optional: true },
  "ignore-unpack-errors": { type: "boolean", optional: true },
  ostemplate: { type: "string", maxLength: 255 },
  password: { type: "string", optional: true, minLength: 5 },
  pool: { type: "string", optional: true, format: "pve-poolid" },
  restore: { type: "boolean", optional: true },
  "ssh-public-keys": { type: "string", optional: true },
  start: { type: "boolean", optional: true },
  storage: { type: "string", optional: true, format: "pve-storage-id" },
  unique: { type: "boolean", optional: true },
};

/** Keys that are request controls, never config keys. */
const notConfig = new Set([
  ...Object.keys(createControls),
  "node",
  "vmid",
  "digest",
  "delete",
  "revert",
  "env",
  "description",
]);

export function lxcEndpoints(node: SimNode): Endpoint[] {
  const spawn = (request: ApiRequest, op: CtOp): string => {
    // An injected failure strikes inside the operation, so a failed create cleans up as PVE's.
    const { failWith, ...faults } = taskFaults(request.faults);
    return node.tasks.spawn({
      type: taskTypes[op.op],
      id: String(op.vmid),
      user: request.caller!.upidUser,
      resume: op,
      work: (context) => runCtOp(node, op, context, failWith),
      ...faults,
    });
  };
  const running = async (vmid: number) => (await node.driver.status(vmid)).state === "running";

  return [
    {
      method: "GET",
      path: "/nodes/{node}/lxc",
      params: { node: nodeParam },
      async handle() {
        const entries = await Promise.all(
          node.cts.vmids().map(async (vmid) => {
            const parsed = node.cts.read(vmid);
            if (parsed === undefined) return undefined;
            const runtime = await node.driver.status(vmid);
            return { ...statusFields(vmid, parsed.config, runtime, node.now()), type: "lxc" };
          }),
        );
        return entries.filter((entry) => entry !== undefined);
      },
    },
    {
      method: "POST",
      path: "/nodes/{node}/lxc",
      params: { ...lxcConfigOptions, ...createControls, ...vmPath },
      handle(request) {
        const { params } = request;
        const vmid = Number(params.vmid);
        checkRootOnlyOptions(request.caller, params, "create");
        if (node.cts.exists(vmid)) {
          throw handlerError(`CT ${vmid} already exists on node '${node.name}'`);
        }
        const ostemplate = String(params.ostemplate);
        const templateStorage = /^([a-z][a-z0-9\-_.]*[a-z0-9]):/i.exec(ostemplate)?.[1];
        if (templateStorage === undefined) {
          if (!request.caller?.isRootPam) {
            throw handlerError("Only root can pass arbitrary filesystem paths.");
          }
          throw handlerError(`unable to parse volume ID '${ostemplate}'`);
        }
        node.storage.require(templateStorage, "vztmpl");
        const storage = String(params.storage ?? "local");
        const hasMountPoints = Object.keys(params).some((k) => /^mp\d+$/.test(k));
        if (hasMountPoints && params.rootfs === undefined) {
          throw handlerError("mount points configured, but 'rootfs' not set - aborting");
        }
        if (params.rootfs === undefined) node.storage.require(storage, "rootdir");
        const config: CtConfig = { options: { unprivileged: "1" }, lxc: [] };
        applyOptions(config, params);
        withGeneratedMacs(config.options);
        config.options.lock = "create";
        node.cts.write(vmid, config);
        return spawn(request, {
          op: "create",
          vmid,
          ostemplate,
          storage,
          start: params.start === 1,
        });
      },
    },
    {
      method: "DELETE",
      path: "/nodes/{node}/lxc/{vmid}",
      params: {
        "destroy-unreferenced-disks": { type: "boolean", optional: true },
        force: { type: "boolean", optional: true },
        purge: { type: "boolean", optional: true },
        ...vmPath,
      },
      async handle(request) {
        const vmid = Number(request.params.vmid);
        const { config } = node.cts.load(vmid);
        if (config.options.lock !== undefined) {
          throw handlerError(`CT is locked (${config.options.lock})`);
        }
        if (config.options.protection === "1") {
          throw handlerError(`can't remove CT ${vmid} - protection mode enabled`);
        }
        if (await running(vmid) && request.params.force !== 1) {
          throw handlerError(`unable to destroy CT ${vmid} - container is running`);
        }
        return spawn(request, { op: "destroy", vmid });
      },
    },
    {
      method: "GET",
      path: "/nodes/{node}/lxc/{vmid}/status/current",
      params: vmPath,
      async handle(request) {
        const vmid = Number(request.params.vmid);
        const { config } = node.cts.load(vmid);
        const runtime = await node.driver.status(vmid);
        const entry = statusFields(vmid, config, runtime, node.now());
        return {
          ...entry,
          type: "lxc",
          swap: 0,
          ha: { managed: 0 },
          ...(runtime.pid === undefined ? {} : { pid: runtime.pid }),
        };
      },
    },
    {
      method: "POST",
      path: "/nodes/{node}/lxc/{vmid}/status/start",
      params: {
        debug: { type: "boolean", optional: true },
        skiplock: { type: "boolean", optional: true },
        ...vmPath,
      },
      async handle(request) {
        const vmid = Number(request.params.vmid);
        checkRootOnlyOptions(request.caller, request.params, "update");
        node.cts.load(vmid);
        if (await running(vmid)) throw handlerError(`CT ${vmid} already running`);
        return spawn(request, { op: "start", vmid, skiplock: request.params.skiplock === 1 });
      },
    },
    {
      method: "POST",
      path: "/nodes/{node}/lxc/{vmid}/status/stop",
      params: {
        "overrule-shutdown": { type: "boolean", optional: true },
        skiplock: { type: "boolean", optional: true },
        ...vmPath,
      },
      async handle(request) {
        const vmid = Number(request.params.vmid);
        checkRootOnlyOptions(request.caller, request.params, "update");
        node.cts.load(vmid);
        if (!(await running(vmid))) throw handlerError(`CT ${vmid} not running`);
        return spawn(request, { op: "stop", vmid, skiplock: request.params.skiplock === 1 });
      },
    },
    {
      method: "POST",
      path: "/nodes/{node}/lxc/{vmid}/status/shutdown",
      params: {
        forceStop: { type: "boolean", optional: true },
        timeout: { type: "integer", optional: true, minimum: 0 },
        ...vmPath,
      },
      async handle(request) {
        const vmid = Number(request.params.vmid);
        node.cts.load(vmid);
        if (!(await running(vmid))) throw handlerError(`CT ${vmid} not running`);
        return spawn(request, {
          op: "shutdown",
          vmid,
          timeout: Number(request.params.timeout ?? 60),
          forceStop: request.params.forceStop === 1,
        });
      },
    },
    {
      method: "GET",
      path: "/nodes/{node}/lxc/{vmid}/config",
      params: {
        current: { type: "boolean", optional: true },
        snapshot: { type: "string", optional: true, maxLength: 40, format: "pve-configid" },
        ...vmPath,
      },
      handle(request) {
        const vmid = Number(request.params.vmid);
        if (request.params.snapshot !== undefined) {
          throw handlerError(`snapshot '${request.params.snapshot}' does not exist`);
        }
        return configToApi(node.cts.load(vmid));
      },
    },
    {
      method: "PUT",
      path: "/nodes/{node}/lxc/{vmid}/config",
      params: {
        ...lxcConfigOptions,
        delete: { type: "string", optional: true, format: "pve-configid-list" },
        digest: { type: "string", optional: true, maxLength: 40 },
        revert: { type: "string", optional: true, format: "pve-configid-list" },
        ...vmPath,
      },
      handle(request) {
        const { params } = request;
        const vmid = Number(params.vmid);
        const changes = Object.keys(params).filter((k) => !["node", "vmid", "digest"].includes(k));
        if (changes.length === 0) throw handlerError("no options specified");
        checkRootOnlyOptions(request.caller, params, "update");
        const parsed = node.cts.load(vmid);
        if (params.digest !== undefined && params.digest !== parsed.digest) {
          throw handlerError(
            "detected modified configuration - file changed by other user? Try again.",
          );
        }
        const lock = parsed.config.options.lock;
        if (lock !== undefined && params.lock === undefined) {
          throw handlerError(`CT is locked (${lock})`);
        }
        const deletions = String(params.delete ?? "").split(/[,;]/).filter((k) => k !== "");
        for (const key of deletions) {
          if (Object.hasOwn(params, key)) {
            throw new PveHttpError(400, "Parameter verification failed.", {
              delete: `unable to delete '${key}' - option is set at the same time`,
            });
          }
          if (key === "env") setEnv(parsed.config, undefined);
          else if (key === "description") delete parsed.config.description;
          else delete parsed.config.options[key];
        }
        applyOptions(parsed.config, params);
        withGeneratedMacs(parsed.config.options);
        node.cts.write(vmid, parsed.config);
        return null;
      },
    },
  ];
}

/** Writes the config keys of a request into a config (env and description have own places). */
function applyOptions(config: CtConfig, params: Readonly<Record<string, ParamValue>>): void {
  for (const [key, value] of Object.entries(params)) {
    if (notConfig.has(key)) continue;
    config.options[key] = String(value);
  }
  if (params.env !== undefined) setEnv(config, String(params.env));
  if (params.description !== undefined) config.description = String(params.description);
}
