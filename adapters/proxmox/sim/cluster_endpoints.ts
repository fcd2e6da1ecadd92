/**
 * `/version`, `/access/ticket`, `/cluster/nextid`, `/cluster/options`, `/cluster/resources`
 * and `/nodes`.
 */
import type { Endpoint, SimNode } from "./endpoint.ts";
import { handlerError, parameterError } from "./http_error.ts";
import { statusFields } from "./ct_view.ts";
import { vmidParam } from "./schema/lxc_options.ts";

/** The PVE release the simulator speaks (OCI templates need ≥ 9.1). */
export const simulatedVersion = { version: "9.1.9", release: "9.1", repoid: "5e1d3b2a" };

export interface ClusterEndpointOptions {
  fingerprint: string;
  /** First free vmid searched from here (datacenter.cfg `next-id`). */
  nextIdLower?: number;
  nextIdUpper?: number;
}

export function clusterEndpoints(node: SimNode, options: ClusterEndpointOptions): Endpoint[] {
  const lower = options.nextIdLower ?? 100;
  const upper = options.nextIdUpper ?? 1_000_000;
  const nodeEntry = () => ({
    node: node.name,
    status: "online",
    cpu: 0.01,
    maxcpu: navigator.hardwareConcurrency,
    mem: 2 * 1024 ** 3,
    maxmem: 16 * 1024 ** 3,
    uptime: Math.floor(performance.now() / 1000),
    level: "",
    ssl_fingerprint: options.fingerprint,
  });

  return [
    {
      method: "GET",
      path: "/version",
      params: {},
      handle: () => ({ ...simulatedVersion, console: "xtermjs" }),
    },
    {
      method: "POST",
      path: "/access/ticket",
      params: {
        "new-format": { type: "boolean", optional: true },
        otp: { type: "string", optional: true },
        password: { type: "string" },
        path: { type: "string", optional: true, maxLength: 64 },
        privs: { type: "string", optional: true, maxLength: 64, format: "pve-priv-list" },
        realm: { type: "string", optional: true, maxLength: 32, format: "pve-realm" },
        "tfa-challenge": { type: "string", optional: true },
        username: { type: "string", maxLength: 64 },
      },
      public: true,
      allowToken: false,
      handle({ params }) {
        return node.access.login({
          username: String(params.username),
          password: String(params.password),
          ...(params.realm === undefined ? {} : { realm: String(params.realm) }),
        });
      },
    },
    {
      method: "GET",
      path: "/cluster/options",
      params: {},
      // datacenter.cfg as PVE parses it: property strings become objects of strings.
      handle: () =>
        options.nextIdLower === undefined && options.nextIdUpper === undefined
          ? {}
          : { "next-id": { lower: String(lower), upper: String(upper) } },
    },
    {
      method: "GET",
      path: "/cluster/nextid",
      params: { vmid: { ...vmidParam, optional: true } },
      handle({ params }) {
        const taken = new Set(node.cts.vmids());
        if (params.vmid !== undefined) {
          const vmid = Number(params.vmid);
          if (taken.has(vmid)) throw parameterError({ vmid: `VM ${vmid} already exists` });
          return String(vmid);
        }
        for (let vmid = lower; vmid < upper; vmid++) {
          if (!taken.has(vmid)) return String(vmid);
        }
        throw handlerError(`unable to get any free VMID in range [${lower}, ${upper}]`);
      },
    },
    {
      method: "GET",
      path: "/cluster/resources",
      params: { type: { type: "string", optional: true, enum: ["vm", "storage", "node", "sdn"] } },
      async handle({ params }) {
        const type = params.type;
        const resources: Record<string, unknown>[] = [];
        if (type === undefined || type === "vm") {
          for (const vmid of node.cts.vmids()) {
            const parsed = node.cts.read(vmid);
            if (parsed === undefined) continue;
            const entry = statusFields(
              vmid,
              parsed.config,
              await node.driver.status(vmid),
              node.now(),
            );
            const { cpus, maxswap: _maxswap, ...rest } = entry;
            resources.push({
              ...rest,
              id: `lxc/${vmid}`,
              type: "lxc",
              node: node.name,
              maxcpu: cpus,
              template: entry.template ?? 0,
            });
          }
        }
        if (type === undefined || type === "node") {
          const n = nodeEntry();
          resources.push({
            id: `node/${n.node}`,
            type: "node",
            node: n.node,
            status: n.status,
            cpu: n.cpu,
            maxcpu: n.maxcpu,
            mem: n.mem,
            maxmem: n.maxmem,
            uptime: n.uptime,
            level: n.level,
          });
        }
        if (type === undefined || type === "storage") {
          for (const storage of node.storage.definitions()) {
            const { used, total } = node.storage.usage(storage.id);
            resources.push({
              id: `storage/${node.name}/${storage.id}`,
              type: "storage",
              node: node.name,
              storage: storage.id,
              status: "available",
              content: storage.content.join(","),
              plugintype: storage.type,
              shared: 0,
              disk: used,
              maxdisk: total,
            });
          }
        }
        return resources;
      },
    },
    {
      method: "GET",
      path: "/nodes",
      params: {},
      handle: () => [nodeEntry()],
    },
  ];
}
