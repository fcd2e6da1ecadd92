/**
 * Reads the image config out of an OCI archive in `vztmpl` storage, as PVE 9.1 does when it
 * creates a CT from one: `index.json` → manifest → config blob. Reads uncompressed tar
 * archives (what `skopeo copy … oci-archive:` writes) and the simulator's placeholder pulls.
 */

export interface OciImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  stopSignal?: string;
}

/** The config of the image in an OCI archive, or undefined if the file is not one. */
export function readOciImageConfig(path: string): OciImageConfig | undefined {
  const data = Deno.readFileSync(path);
  const placeholder = placeholderConfig(data);
  if (placeholder !== undefined) return placeholder;
  const files = tarEntries(data);
  const index = json(files.get("index.json"));
  const manifestDigest = index?.manifests?.[0]?.digest;
  if (typeof manifestDigest !== "string") return undefined;
  const manifest = json(files.get(blobPath(manifestDigest)));
  const configDigest = manifest?.config?.digest;
  if (typeof configDigest !== "string") return undefined;
  const config = json(files.get(blobPath(configDigest)))?.config ?? {};
  return fromImageConfig(config);
}

/** Turns an image's Entrypoint + Cmd into the command line PVE writes as `entrypoint`. */
export function commandLine(config: OciImageConfig): string | undefined {
  const argv = [...(config.entrypoint ?? []), ...(config.cmd ?? [])];
  if (argv.length === 0) return undefined;
  return argv.map((arg) => /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}

// deno-lint-ignore no-explicit-any
function fromImageConfig(config: any): OciImageConfig {
  const strings = (value: unknown) =>
    Array.isArray(value) && value.every((v) => typeof v === "string")
      ? value as string[]
      : undefined;
  const out: OciImageConfig = {};
  const entrypoint = strings(config.Entrypoint);
  const cmd = strings(config.Cmd);
  const env = strings(config.Env);
  if (entrypoint !== undefined) out.entrypoint = entrypoint;
  if (cmd !== undefined) out.cmd = cmd;
  if (env !== undefined) out.env = env;
  if (typeof config.WorkingDir === "string" && config.WorkingDir !== "") {
    out.workingDir = config.WorkingDir;
  }
  if (typeof config.User === "string" && config.User !== "") out.user = config.User;
  if (typeof config.StopSignal === "string") out.stopSignal = config.StopSignal;
  return out;
}

/** The simulator's placeholder pull: `{"simulated": true, "reference": …, "config": …}`. */
function placeholderConfig(data: Uint8Array): OciImageConfig | undefined {
  if (data[0] !== 0x7b) return undefined; // "{"
  const parsed = json(data);
  if (parsed?.simulated !== true) return undefined;
  return fromImageConfig(parsed.config ?? {});
}

function blobPath(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

// deno-lint-ignore no-explicit-any
function json(data: Uint8Array | undefined): any {
  if (data === undefined) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}

/** The regular files of a ustar archive (names without a leading `./`). */
function tarEntries(data: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (from: number, length: number) =>
    new TextDecoder().decode(data.subarray(from, from + length)).replace(/\0.*$/s, "");
  let offset = 0;
  while (offset + 512 <= data.length) {
    const name = text(offset, 100);
    if (name === "") break;
    const size = parseInt(text(offset + 124, 12).trim() || "0", 8);
    const type = text(offset + 156, 1);
    const prefix = text(offset + 345, 155);
    const full = (prefix === "" ? name : `${prefix}/${name}`).replace(/^\.\//, "");
    if (type === "0" || type === "") {
      files.set(full, data.subarray(offset + 512, offset + 512 + size));
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}
