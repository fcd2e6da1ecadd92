/**
 * CRI configs into the runtime's specs, checked: a missing or malformed field is
 * InvalidArgument naming it, as containerd and CRI-O answer.
 */
import { InvalidArgumentError } from "../../lib/errors.ts";
import type { ContainerSpec, CriResources, SandboxSpec } from "../../runtime/api.ts";
import { type Message, required, requiredMessage, stringMap } from "./convert.ts";

function attempt(value: unknown, field: string): number {
  const n = Number(value ?? 0);
  if (!Number.isInteger(n) || n < 0) {
    throw new InvalidArgumentError(`${field} must be a non-negative integer`, {
      details: { field },
    });
  }
  return n;
}

/** The CRI: a group without a user to go with it MUST be an error (containerd refuses it too). */
function checkRunAsGroup(context: unknown, field: string, usernameToo: boolean): void {
  const c = (context ?? {}) as Message;
  if (c.run_as_group == null || c.run_as_user != null) return;
  if (usernameToo && typeof c.run_as_username === "string" && c.run_as_username !== "") return;
  const user = usernameToo ? "run_as_user or run_as_username" : "run_as_user";
  throw new InvalidArgumentError(`${field}.run_as_group is set without ${user}`, {
    details: { field: `${field}.run_as_group` },
  });
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

export function sandboxSpecOf(config: unknown, runtimeHandler: unknown): SandboxSpec {
  const c = requiredMessage(config, "config");
  const m = requiredMessage(c.metadata, "config.metadata");
  const linux = (c.linux ?? {}) as Message;
  checkRunAsGroup(linux.security_context, "config.linux.security_context", false);
  const namespaces = (linux.security_context?.namespace_options ?? {}) as Message;
  checkPidMode(namespaces, "config.linux.security_context.namespace_options.pid");
  const dns = c.dns_config as Message | null | undefined;
  return {
    metadata: {
      name: required(m.name, "config.metadata.name"),
      uid: required(m.uid, "config.metadata.uid"),
      namespace: required(m.namespace, "config.metadata.namespace"),
      attempt: attempt(m.attempt, "config.metadata.attempt"),
    },
    hostname: typeof c.hostname === "string" ? c.hostname : "",
    logDirectory: typeof c.log_directory === "string" ? c.log_directory : "",
    dnsConfig: dns
      ? {
        servers: strings(dns.servers),
        searches: strings(dns.searches),
        options: strings(dns.options),
      }
      : null,
    portMappings: (Array.isArray(c.port_mappings) ? c.port_mappings : []).map((p: Message) => ({
      protocol: String(p.protocol ?? "TCP"),
      containerPort: Number(p.container_port ?? 0),
      hostPort: Number(p.host_port ?? 0),
      hostIp: String(p.host_ip ?? ""),
    })),
    labels: stringMap(c.labels),
    annotations: stringMap(c.annotations),
    hostNetwork: namespaces.network === "NODE",
    hostIpc: namespaces.ipc === "NODE",
    cgroupParent: typeof linux.cgroup_parent === "string" ? linux.cgroup_parent : "",
    sysctls: stringMap(linux.sysctls),
    runtimeHandler: typeof runtimeHandler === "string" ? runtimeHandler : "",
  };
}

/**
 * Only a PID namespace per container for now: NODE and TARGET need the CT to join another
 * pid namespace. POD is proto3's default (what every config without namespace options
 * carries, indistinguishable on the wire), so it runs as CONTAINER.
 */
function checkPidMode(namespaces: Message, field: string): void {
  const pid = namespaces?.pid;
  if (pid !== "NODE" && pid !== "TARGET" && pid !== 2 && pid !== 3) return;
  throw new InvalidArgumentError(
    `${field} is ${String(pid)}: pve-cri supports only CONTAINER for now`,
    { details: { field } },
  );
}

/** The user the process runs as: run_as_username, else run_as_user, with run_as_group. */
function userOf(security: Message | undefined): string {
  if (security === undefined || security === null) return "";
  const name = typeof security.run_as_username === "string" ? security.run_as_username : "";
  const uid = security.run_as_user?.value;
  const gid = security.run_as_group?.value;
  const user = name !== "" ? name : uid === undefined || uid === null ? "" : String(uid);
  if (user === "") return "";
  return gid === undefined || gid === null ? user : `${user}:${String(gid)}`;
}

export function resourcesOf(linux: unknown): CriResources | null {
  if (typeof linux !== "object" || linux === null) return null;
  const r = linux as Message;
  const int = (v: unknown) => (v === undefined || v === null || v === "" ? "0" : String(v));
  return {
    cpuPeriod: int(r.cpu_period),
    cpuQuota: int(r.cpu_quota),
    cpuShares: int(r.cpu_shares),
    memoryLimitInBytes: int(r.memory_limit_in_bytes),
    memorySwapLimitInBytes: int(r.memory_swap_limit_in_bytes),
    cpusetCpus: typeof r.cpuset_cpus === "string" ? r.cpuset_cpus : "",
    cpusetMems: typeof r.cpuset_mems === "string" ? r.cpuset_mems : "",
  };
}

/** KeyValue.value is `bytes` in CRI v1 (it may carry a Secret): UTF-8 text to us. */
function envValue(value: unknown): string {
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return typeof value === "string" ? value : "";
}

export function containerSpecOf(config: unknown): ContainerSpec {
  const c = requiredMessage(config, "config");
  const m = requiredMessage(c.metadata, "config.metadata");
  const image = requiredMessage(c.image, "config.image");
  const linux = (c.linux ?? {}) as Message;
  checkRunAsGroup(linux.security_context, "config.linux.security_context", true);
  checkPidMode(
    (linux.security_context?.namespace_options ?? {}) as Message,
    "config.linux.security_context.namespace_options.pid",
  );
  const envs = (Array.isArray(c.envs) ? c.envs : []).map((e: Message, i: number) => ({
    key: required(e?.key, `config.envs[${i}].key`),
    value: envValue(e?.value),
  }));
  return {
    name: required(m.name, "config.metadata.name"),
    attempt: attempt(m.attempt, "config.metadata.attempt"),
    image: required(image.image, "config.image.image"),
    command: strings(c.command),
    args: strings(c.args),
    workingDir: typeof c.working_dir === "string" ? c.working_dir : "",
    envs,
    mounts: (Array.isArray(c.mounts) ? c.mounts : []).map((mount: Message, i: number) => ({
      containerPath: required(mount.container_path, `config.mounts[${i}].container_path`),
      hostPath: typeof mount.host_path === "string" ? mount.host_path : "",
      readonly: mount.readonly === true,
      propagation: String(mount.propagation ?? "PROPAGATION_PRIVATE"),
    })),
    labels: stringMap(c.labels),
    annotations: stringMap(c.annotations),
    logPath: typeof c.log_path === "string" ? c.log_path : "",
    tty: c.tty === true,
    stdin: c.stdin === true,
    resources: resourcesOf(linux.resources),
    user: userOf(linux.security_context as Message | undefined),
  };
}
