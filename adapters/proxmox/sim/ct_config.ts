/**
 * A CT's config file in Proxmox's text format (`/etc/pve/lxc/<vmid>.conf`): the description
 * as `#` comment lines, `key: value` lines sorted by key, then raw `lxc.*` lines. The digest
 * is the SHA-1 of the file, as `GET …/config` reports it.
 */
import { createHash } from "node:crypto";
import { lxcKeyValidity } from "./lxc_whitelist.ts";

export interface CtConfig {
  description?: string;
  /** `key → value` as written in the file (`memory → "512"`). */
  options: Record<string, string>;
  /** Raw `lxc.*` lines in file order. */
  lxc: [string, string][];
}

export interface ParsedCtConfig {
  config: CtConfig;
  digest: string;
  /** Lines Proxmox would drop with a warning (`vm N - unable to parse config: …`). */
  warnings: string[];
}

export function configDigest(text: string): string {
  return createHash("sha1").update(text).digest("hex");
}

/** Checks one raw line as Proxmox's parser would; returns the refusal, or undefined. */
export function rawLineError(vmid: number, key: string, line: string): string | undefined {
  const validity = lxcKeyValidity(key);
  if (validity === true) return undefined;
  if (validity === false) return `vm ${vmid} - unable to parse config: ${line}`;
  return `vm ${vmid} - ${key}: ${validity}`;
}

export function parseCtConfig(vmid: number, text: string): ParsedCtConfig {
  const config: CtConfig = { options: {}, lxc: [] };
  const warnings: string[] = [];
  const description: string[] = [];
  for (const line of text.split("\n")) {
    if (/^\s*$/.test(line)) continue;
    if (/^\[[a-z][a-z0-9_-]+\]\s*$/i.test(line)) break; // snapshot and pending sections
    const comment = /^#(.*)$/.exec(line);
    if (comment !== null) {
      description.push(decodeText(comment[1]!));
      continue;
    }
    const raw = /^(lxc\.[a-z0-9_\-.]+)(?::|\s*=)\s*(.*?)\s*$/.exec(line);
    if (raw !== null) {
      const error = rawLineError(vmid, raw[1]!, line);
      if (error === undefined) config.lxc.push([raw[1]!, raw[2]!]);
      else warnings.push(error);
      continue;
    }
    const option = /^([a-z][a-z_]*\d*):\s*(.+?)\s*$/.exec(line);
    if (option !== null) config.options[option[1]!] = option[2]!;
    else warnings.push(`vm ${vmid} - unable to parse config: ${line}`);
  }
  if (description.length > 0) config.description = description.join("\n");
  return { config, digest: configDigest(text), warnings };
}

export function formatCtConfig(config: CtConfig): string {
  let text = "";
  if (config.description !== undefined && config.description !== "") {
    for (const line of config.description.split("\n")) text += `#${encodeText(line)}\n`;
  }
  for (const key of Object.keys(config.options).sort()) {
    text += `${key}: ${config.options[key]}\n`;
  }
  for (const [key, value] of config.lxc) text += `${key}: ${value}\n`;
  return text;
}

/** pve-common `encode_text`: escapes what would break a comment line. */
function encodeText(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[%\x00-\x1f\x7f]/g,
    (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

function decodeText(text: string): string {
  return text.replace(
    /%([0-9a-fA-F]{2})/g,
    (_, hex: string) => String.fromCharCode(parseInt(hex, 16)),
  );
}
