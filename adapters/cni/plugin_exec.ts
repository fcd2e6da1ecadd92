/**
 * Running one CNI plugin as the spec says: the command and its context in `CNI_*` variables,
 * the network config on stdin, the result (or an error object) on stdout. A plugin that
 * outlives its timeout is killed; its error JSON becomes an error naming the plugin.
 */
import { join } from "node:path";
import { concatBytes } from "../../lib/bytes.ts";
import { FailedPreconditionError, RuntimeError } from "../../lib/errors.ts";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS" | "GC";

export interface PluginCall {
  command: CniCommand;
  /** The plugin's `type`: the binary's name. */
  type: string;
  containerId: string;
  netns: string;
  ifname: string;
  /** `K=V;K=V`. */
  args: string;
  /** The network config the plugin reads on stdin. */
  config: Record<string, unknown>;
  binDirs: string[];
  timeoutMs: number;
}

/** A plugin failed: its own code and message (CNI error codes 1–99 are the spec's). */
export class CniPluginError extends RuntimeError {
  constructor(
    readonly plugin: string,
    readonly command: CniCommand,
    readonly cniCode: number | undefined,
    message: string,
    details?: string,
  ) {
    const detail = details === undefined || details === "" ? "" : ` (${details})`;
    super("Internal", `CNI plugin ${plugin} ${command} failed: ${message}${detail}`, {
      details: { plugin, command, ...(cniCode === undefined ? {} : { cni_code: cniCode }) },
    });
  }
}

const maxOutput = 1024 * 1024;

export function findPlugin(type: string, binDirs: string[]): string | undefined {
  for (const dir of binDirs) {
    const path = join(dir, type);
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not in this dir
    }
  }
  return undefined;
}

export async function execPlugin(call: PluginCall): Promise<Record<string, unknown> | undefined> {
  const path = findPlugin(call.type, call.binDirs);
  if (path === undefined) {
    throw new FailedPreconditionError(
      `CNI plugin ${call.type} not found in ${call.binDirs.join(":")}`,
      { details: { plugin: call.type } },
    );
  }
  const child = new Deno.Command(path, {
    env: {
      CNI_COMMAND: call.command,
      CNI_CONTAINERID: call.containerId,
      CNI_NETNS: call.netns,
      CNI_IFNAME: call.ifname,
      CNI_ARGS: call.args,
      CNI_PATH: call.binDirs.join(":"),
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, call.timeoutMs);
  let status: Deno.CommandStatus;
  let out: Uint8Array;
  let err: Uint8Array;
  try {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(call.config))).catch(() => {});
    await writer.close().catch(() => {});
    [out, err, status] = await Promise.all([
      readBounded(child.stdout),
      readBounded(child.stderr),
      child.status,
    ]);
  } finally {
    clearTimeout(timer);
  }
  const stdout = new TextDecoder().decode(out).trim();
  if (status.signal === "SIGKILL" && status.code !== 0) {
    throw new CniPluginError(
      call.type,
      call.command,
      undefined,
      `timed out after ${call.timeoutMs} ms`,
    );
  }
  if (status.code !== 0) {
    const failure = parseJson(stdout) as
      | { code?: unknown; msg?: unknown; details?: unknown }
      | undefined;
    const message = typeof failure?.msg === "string"
      ? failure.msg
      : (new TextDecoder().decode(err).trim() || stdout || `exit code ${status.code}`).slice(
        0,
        2000,
      );
    throw new CniPluginError(
      call.type,
      call.command,
      typeof failure?.code === "number" ? failure.code : undefined,
      message,
      typeof failure?.details === "string" ? failure.details : undefined,
    );
  }
  if (stdout === "") return undefined;
  const result = parseJson(stdout);
  if (typeof result !== "object" || result === null) {
    throw new CniPluginError(call.type, call.command, undefined, "its result is not JSON");
  }
  return result as Record<string, unknown>;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readBounded(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    if (size < maxOutput) chunks.push(chunk.subarray(0, maxOutput - size));
    size += chunk.length;
  }
  return concatBytes(chunks);
}
