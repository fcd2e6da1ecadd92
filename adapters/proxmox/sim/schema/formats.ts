/**
 * PVE's named string formats (pve-common `JSONSchema.pm` and the storage/container plugins
 * register them); the schema only names them. Each check returns the reason a value is
 * refused, or undefined. The validator prefixes it with `invalid format - `.
 */
import { isIPv4, isIPv6 } from "node:net";

export type FormatCheck = (value: string) => string | undefined;

const nodeName = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const dnsName =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const storageId = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i;
const volumeId = /^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$/i;
const configId = /^[a-z][a-z0-9_-]+$/i;
const tag = /^[a-z0-9_][a-z0-9_\-+.]*$/i;
const unicastMac = /^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i;
const diskSize = /^\d+(?:\.\d+)?[KMGT]?$/;
const poolId = /^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+){0,2}$/;
const realm = /^[A-Za-z][A-Za-z0-9.\-_]+$/;
const privilege = /^[A-Z][A-Za-z.]+$/;
const timezone = /^[A-Za-z][A-Za-z0-9_+\-/]*$/;
const storageContents = new Set([
  "images",
  "rootdir",
  "vztmpl",
  "backup",
  "iso",
  "snippets",
  "import",
]);
const taskStatusTypes = new Set(["ok", "warning", "error", "unknown"]);

function list(separator: RegExp, item: FormatCheck): FormatCheck {
  return (value) => {
    for (const part of value.split(separator)) {
      if (part === "") continue;
      const error = item(part);
      if (error !== undefined) return error;
    }
    return undefined;
  };
}

function cidr(isIp: (ip: string) => boolean, maxPrefix: number, family: string): FormatCheck {
  return (value) => {
    const [ip, prefix, extra] = value.split("/");
    const length = Number(prefix);
    const ok = ip !== undefined && isIp(ip) && extra === undefined && prefix !== undefined &&
      /^\d+$/.test(prefix) && length <= maxPrefix;
    return ok ? undefined : `value does not look like a valid ${family} network configuration`;
  };
}

const ipv4Cidr = cidr(isIPv4, 32, "IPv4");
const ipv6Cidr = cidr(isIPv6, 128, "IPv6");
const checkDnsName: FormatCheck = (v) =>
  dnsName.test(v) ? undefined : `value does not look like a valid DNS name`;

/** Checks a `/path/in/ct` or a volume: PVE refuses `..` components in mount point strings. */
const mpString: FormatCheck = (value) =>
  /(^|\/)\.\.?(\/|$)/.test(value) ? `${value} contains illegal character sequences` : undefined;

const startupOrder: FormatCheck = (value) => {
  for (const part of value.split(",")) {
    if (!/^(?:(?:order|up|down)=)?\d+$/.test(part)) {
      return `unable to parse startup options '${value}'`;
    }
  }
  return undefined;
};

export const formats: Readonly<Record<string, FormatCheck>> = {
  "pve-node": (v) => nodeName.test(v) ? undefined : "value does not look like a valid node name",
  "pve-vmid": (v) => /^\d+$/.test(v) ? undefined : "value does not look like a valid VM ID",
  "dns-name": checkDnsName,
  "dns-name-list": list(/[\s,;]+/, checkDnsName),
  "pve-storage-id": (v) =>
    storageId.test(v) ? undefined : `storage ID '${v}' contains illegal characters`,
  "pve-volume-id": (v) => volumeId.test(v) ? undefined : `unable to parse volume ID '${v}'`,
  "pve-configid": (v) => configId.test(v) ? undefined : `invalid configuration ID '${v}'`,
  "pve-configid-list": list(
    /[,;]/,
    (v) => configId.test(v) ? undefined : `invalid configuration ID '${v}'`,
  ),
  "pve-tag-list": list(/[;, ]/, (v) => tag.test(v) ? undefined : `invalid tag '${v}'`),
  "mac-addr": (v) =>
    unicastMac.test(v) ? undefined : "value does not look like a valid unicast MAC address",
  "ipv4": (v) => isIPv4(v) ? undefined : "value does not look like a valid IPv4 address",
  "ipv6": (v) => isIPv6(v) ? undefined : "value does not look like a valid IPv6 address",
  "pve-ipv4-config": (v) => v === "dhcp" || v === "manual" ? undefined : ipv4Cidr(v),
  "pve-ipv6-config": (v) =>
    v === "auto" || v === "dhcp" || v === "manual" ? undefined : ipv6Cidr(v),
  "lxc-ip-with-ll-iface-list": list(/[\s,;]+/, (v) => {
    const ip = v.replace(/%[^%]+$/, "");
    return isIPv4(ip) || isIPv6(ip) ? undefined : `unable to parse IP address '${v}'`;
  }),
  "disk-size": (v) => diskSize.test(v) ? undefined : `unable to parse size '${v}'`,
  "pve-lxc-mp-string": mpString,
  "pve-lxc-dev-string": (v) =>
    v.startsWith("/dev/") && mpString(v) === undefined ? undefined : `not a valid device: '${v}'`,
  "pve-startup-order": startupOrder,
  "pve-ct-timezone": (v) =>
    v === "host" || timezone.test(v) ? undefined : `invalid time zone '${v}'`,
  "pve-poolid": (v) => poolId.test(v) ? undefined : `pool name '${v}' contains illegal characters`,
  "pve-realm": (v) => realm.test(v) ? undefined : `realm ID '${v}' contains illegal characters`,
  "pve-priv-list": list(/[,;]/, (v) => privilege.test(v) ? undefined : `invalid privilege '${v}'`),
  "pve-storage-content": (v) => storageContents.has(v) ? undefined : `invalid content type '${v}'`,
  "pve-storage-content-list": list(
    /[,;]/,
    (v) => storageContents.has(v) ? undefined : `invalid content type '${v}'`,
  ),
  "pve-task-status-type-list": list(
    /[,;]/,
    (v) => taskStatusTypes.has(v) ? undefined : `invalid task status type '${v}'`,
  ),
};
