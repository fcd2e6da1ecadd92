/**
 * The parameters of the LXC config keys, shared by create (`POST /nodes/{node}/lxc`) and
 * update (`PUT …/config`). Written for the simulator; `tests/adapters/proxmox/contract_test.ts`
 * holds them against the official schema.
 */
import type { ParamSchema, ParamTable, PropertyStringFormat } from "./types.ts";

const mountOptions: ParamSchema = {
  type: "string",
  optional: true,
  pattern:
    "(?^:(?^:(discard|lazytime|noatime|nodev|noexec|nosuid))(;(?^:(discard|lazytime|noatime|nodev|noexec|nosuid)))*)",
};

/** `rootfs`: `[volume=]<vol>[,acl=…][,size=…]…`. */
export const rootfsFormat: PropertyStringFormat = {
  acl: { type: "boolean", optional: true },
  mountoptions: mountOptions,
  quota: { type: "boolean", optional: true },
  replicate: { type: "boolean", optional: true },
  ro: { type: "boolean", optional: true },
  shared: { type: "boolean", optional: true },
  size: { type: "string", optional: true, format: "disk-size" },
  volume: { type: "string", format: "pve-lxc-mp-string", default_key: true },
};

/** `mp[n]`: a rootfs plus where it is mounted. */
export const mountPointFormat: PropertyStringFormat = {
  ...rootfsFormat,
  backup: { type: "boolean", optional: true },
  keepattrs: { type: "boolean", optional: true },
  mp: { type: "string", format: "pve-lxc-mp-string" },
};

/** `net[n]`: `name=eth0,bridge=vmbr0,ip=dhcp,…`. */
export const netFormat: PropertyStringFormat = {
  bridge: { type: "string", optional: true, pattern: "[-_.\\w\\d]+" },
  firewall: { type: "boolean", optional: true },
  gw: { type: "string", optional: true, format: "ipv4" },
  gw6: { type: "string", optional: true, format: "ipv6" },
  "host-managed": { type: "boolean", optional: true },
  hwaddr: { type: "string", optional: true, format: "mac-addr" },
  ip: { type: "string", optional: true, format: "pve-ipv4-config" },
  ip6: { type: "string", optional: true, format: "pve-ipv6-config" },
  link_down: { type: "boolean", optional: true },
  mtu: { type: "integer", optional: true, minimum: 64, maximum: 65535 },
  name: { type: "string", pattern: "[-_.\\w\\d]+" },
  rate: { type: "number", optional: true },
  tag: { type: "integer", optional: true, minimum: 1, maximum: 4094 },
  trunks: { type: "string", optional: true, pattern: "(?^:\\d+(?:;\\d+)*)" },
  type: { type: "string", optional: true, enum: ["veth"] },
};

/** `features`: only `nesting` is open to users other than root@pam. */
export const featuresFormat: PropertyStringFormat = {
  force_rw_sys: { type: "boolean", optional: true },
  fuse: { type: "boolean", optional: true },
  keyctl: { type: "boolean", optional: true },
  mknod: { type: "boolean", optional: true },
  mount: { type: "string", optional: true, pattern: "(?^:[a-zA-Z0-9_; ]+)" },
  nesting: { type: "boolean", optional: true },
};

export const devFormat: PropertyStringFormat = {
  "deny-write": { type: "boolean", optional: true },
  gid: { type: "integer", optional: true, minimum: 0 },
  mode: { type: "string", optional: true, pattern: "0[0-7]{3}" },
  path: { type: "string", optional: true, format: "pve-lxc-dev-string", default_key: true },
  uid: { type: "integer", optional: true, minimum: 0 },
};

export const unusedFormat: PropertyStringFormat = {
  volume: { type: "string", format: "pve-volume-id", default_key: true },
};

export const nodeParam: ParamSchema = { type: "string", format: "pve-node" };
export const vmidParam: ParamSchema = {
  type: "integer",
  minimum: 100,
  maximum: 999999999,
  format: "pve-vmid",
};

/** Every key a CT config may hold (and create or update may set). */
export const lxcConfigOptions: ParamTable = {
  arch: {
    type: "string",
    optional: true,
    enum: ["amd64", "i386", "arm64", "armhf", "riscv32", "riscv64"],
  },
  cmode: { type: "string", optional: true, enum: ["shell", "console", "tty"] },
  console: { type: "boolean", optional: true },
  cores: { type: "integer", optional: true, minimum: 1, maximum: 8192 },
  cpulimit: { type: "number", optional: true, minimum: 0, maximum: 8192 },
  cpuunits: { type: "integer", optional: true, minimum: 0, maximum: 500000 },
  debug: { type: "boolean", optional: true },
  description: { type: "string", optional: true, maxLength: 8192 },
  "dev[n]": { type: "string", optional: true, format: devFormat },
  entrypoint: { type: "string", optional: true, pattern: "(?^:[^\\x00-\\x08\\x10-\\x1F\\x7F]+)" },
  env: {
    type: "string",
    optional: true,
    pattern:
      "(?^:(?:\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)(?:\\0\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)*)",
  },
  features: { type: "string", optional: true, format: featuresFormat },
  hookscript: { type: "string", optional: true, format: "pve-volume-id" },
  hostname: { type: "string", optional: true, maxLength: 255, format: "dns-name" },
  lock: {
    type: "string",
    optional: true,
    enum: [
      "backup",
      "create",
      "destroyed",
      "disk",
      "fstrim",
      "migrate",
      "mounted",
      "rollback",
      "snapshot",
      "snapshot-delete",
    ],
  },
  memory: { type: "integer", optional: true, minimum: 16 },
  "mp[n]": { type: "string", optional: true, format: mountPointFormat },
  nameserver: { type: "string", optional: true, format: "lxc-ip-with-ll-iface-list" },
  "net[n]": { type: "string", optional: true, format: netFormat },
  onboot: { type: "boolean", optional: true },
  ostype: {
    type: "string",
    optional: true,
    enum: [
      "debian",
      "devuan",
      "ubuntu",
      "centos",
      "fedora",
      "opensuse",
      "archlinux",
      "alpine",
      "gentoo",
      "nixos",
      "unmanaged",
    ],
  },
  protection: { type: "boolean", optional: true },
  rootfs: { type: "string", optional: true, format: rootfsFormat },
  searchdomain: { type: "string", optional: true, format: "dns-name-list" },
  startup: { type: "string", optional: true, format: "pve-startup-order" },
  swap: { type: "integer", optional: true, minimum: 0 },
  tags: { type: "string", optional: true, format: "pve-tag-list" },
  template: { type: "boolean", optional: true },
  timezone: { type: "string", optional: true, format: "pve-ct-timezone" },
  tty: { type: "integer", optional: true, minimum: 0, maximum: 6 },
  unprivileged: { type: "boolean", optional: true },
  "unused[n]": { type: "string", optional: true, format: unusedFormat },
};

/** Keys whose values PVE keeps as text (`number` type): `cpulimit` comes back as `"0.5"`. */
export function isNumberTyped(key: string): boolean {
  return lxcConfigOptions[key]?.type === "number";
}
