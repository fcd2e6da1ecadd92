/** How a CT's config and run state look through the API (config, status, list entries). */
import type { CtConfig, ParsedCtConfig } from "./ct_config.ts";
import type { CtRunSpec, CtRuntimeStatus } from "./driver.ts";
import { isNumberTyped, lxcConfigOptions, netFormat } from "./schema/lxc_options.ts";
import { parsePropertyString, schemaKey } from "./schema/validate.ts";

const mib = 1024 * 1024;
const envKey = "lxc.environment.runtime";

/** `GET …/config`: typed values (numbers stay text for `number` keys), digest, raw lxc lines. */
export function configToApi(parsed: ParsedCtConfig): Record<string, unknown> {
  const { config } = parsed;
  const data: Record<string, unknown> = { digest: parsed.digest };
  for (const [key, value] of Object.entries(config.options)) {
    const schema = lxcConfigOptions[schemaKey(lxcConfigOptions, key) ?? ""];
    const numeric = schema !== undefined &&
      (schema.type === "integer" || schema.type === "boolean");
    data[key] = numeric && !isNumberTyped(key) ? Number(value) : value;
  }
  if (config.description !== undefined) data.description = config.description;
  const env = config.lxc.filter(([k]) => k === envKey).map(([, v]) => v);
  if (env.length > 0) data.env = env.join("\0");
  const lxc = config.lxc.filter(([k]) => k !== envKey);
  if (lxc.length > 0) data.lxc = lxc;
  return data;
}

/** Replaces the config's env (stored as `lxc.environment.runtime` lines). */
export function setEnv(config: CtConfig, env: string | undefined): void {
  config.lxc = config.lxc.filter(([k]) => k !== envKey);
  if (env === undefined || env === "") return;
  for (const entry of env.split("\0")) config.lxc.push([envKey, entry]);
}

export function runSpecOf(vmid: number, config: CtConfig): CtRunSpec {
  const o = config.options;
  const cmode = o.cmode === "console" || o.cmode === "shell" ? o.cmode : "tty";
  return {
    vmid,
    hostname: o.hostname ?? `CT${vmid}`,
    entrypoint: o.entrypoint ?? "/sbin/init",
    env: config.lxc.filter(([k]) => k === envKey).map(([, v]) => v),
    cmode,
    memoryMiB: Number(o.memory ?? 512),
    swapMiB: Number(o.swap ?? 512),
    ...(o.cores === undefined ? {} : { cores: Number(o.cores) }),
    ...(o.cpulimit === undefined ? {} : { cpulimit: Number(o.cpulimit) }),
    ...(o.cpuunits === undefined ? {} : { cpuunits: Number(o.cpuunits) }),
    net: netsOf(o),
    unprivileged: o.unprivileged === "1",
    lxc: config.lxc.filter(([k]) => k !== envKey),
  };
}

function netsOf(options: Record<string, string>): Record<string, Record<string, string>> {
  const nets: Record<string, Record<string, string>> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!/^net\d+$/.test(key)) continue;
    const parsed = parsePropertyString(netFormat, value);
    if (!("values" in parsed)) continue;
    nets[key] = Object.fromEntries(
      Object.entries(parsed.values).map(([k, v]) => [k, String(v)]),
    );
  }
  return nets;
}

/** Size in bytes of a `rootfs` value's `size=` (e.g. `8G`). */
export function rootfsBytes(rootfs: string | undefined): number {
  const m = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)/.exec(rootfs ?? "");
  if (m === null) return 0;
  const unit = { "": 1, K: 1024, M: mib, G: 1024 * mib, T: 1024 * 1024 * mib }[m[2]!] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

/** The fields `GET /nodes/{node}/lxc`, `status/current` and `/cluster/resources` share. */
export function statusFields(
  vmid: number,
  config: CtConfig,
  runtime: CtRuntimeStatus,
  now: number,
): Record<string, unknown> {
  const o = config.options;
  const running = runtime.state === "running";
  const maxmem = Number(o.memory ?? 512) * mib;
  const entry: Record<string, unknown> = {
    vmid,
    status: runtime.state,
    name: o.hostname ?? `CT${vmid}`,
    cpu: 0,
    cpus: Number(o.cores ?? 1),
    mem: running ? Math.min(maxmem, 32 * mib) : 0,
    maxmem,
    maxswap: Number(o.swap ?? 512) * mib,
    disk: 0,
    maxdisk: rootfsBytes(o.rootfs),
    diskread: 0,
    diskwrite: 0,
    netin: 0,
    netout: 0,
    uptime: running && runtime.startedAt !== undefined
      ? Math.max(0, Math.floor((now - runtime.startedAt) / 1000))
      : 0,
  };
  if (o.lock !== undefined) entry.lock = o.lock;
  if (o.tags !== undefined) entry.tags = o.tags;
  if (o.template === "1") entry.template = 1;
  return entry;
}
