/**
 * The image config (the JSON blob an image id is the digest of): what a container gets from
 * its image, as PVE 9.1 and containerd read it.
 */
import { DataLossError } from "../../lib/errors.ts";
import { isDigest } from "./digest.ts";
import { parseJsonObject } from "./manifest.ts";

export interface ImageConfig {
  user: string;
  env: string[];
  entrypoint: string[];
  cmd: string[];
  workingDir: string;
  stopSignal: string;
  volumes: string[];
  exposedPorts: string[];
  labels: Record<string, string>;
}

export interface ImageConfigFile {
  os: string;
  architecture: string;
  config: ImageConfig;
  /** Digests of the uncompressed layers, in order. */
  diffIds: string[];
}

/** Config documents are small; this bounds what is read of a hostile one. */
export const maxConfigBytes = 8 * 1024 * 1024;

export function parseImageConfig(bytes: Uint8Array, where: string): ImageConfigFile {
  if (bytes.length > maxConfigBytes) {
    throw new DataLossError(`${where}: image config is larger than ${maxConfigBytes} bytes`);
  }
  const doc = parseJsonObject(bytes, where, "image config");
  const diffIds = doc.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every(isDigest)) {
    throw new DataLossError(`${where}: image config has no valid rootfs.diff_ids`);
  }
  const c = typeof doc.config === "object" && doc.config !== null ? doc.config : {};
  const strings = (value: unknown): string[] =>
    Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  const keys = (value: unknown): string[] =>
    typeof value === "object" && value !== null ? Object.keys(value).sort() : [];
  const text = (value: unknown): string => typeof value === "string" ? value : "";
  const labels: Record<string, string> = {};
  if (typeof c.Labels === "object" && c.Labels !== null) {
    for (const [k, v] of Object.entries(c.Labels)) if (typeof v === "string") labels[k] = v;
  }
  return {
    os: text(doc.os),
    architecture: text(doc.architecture),
    diffIds,
    config: {
      user: text(c.User),
      env: strings(c.Env),
      entrypoint: strings(c.Entrypoint),
      cmd: strings(c.Cmd),
      workingDir: text(c.WorkingDir),
      stopSignal: text(c.StopSignal),
      volumes: keys(c.Volumes),
      exposedPorts: keys(c.ExposedPorts),
      labels,
    },
  };
}

/**
 * The CRI's view of an image's User: a numeric user (`1000`, `1000:1000`) is a uid, anything
 * else a user name, as containerd reports it (the group part is not the CRI's business).
 */
export function imageUser(user: string): { uid?: bigint; username?: string } {
  const name = user.split(":")[0] ?? "";
  if (name === "") return {};
  if (/^\d+$/.test(name)) return { uid: BigInt(name) };
  return { username: name };
}
