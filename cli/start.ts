/**
 * `deno task start`: serve CRI on a unix socket, and the state-inspection endpoint.
 *
 *   --socket PATH      default /run/pve-cri/pve-cri.sock (root), ./.pve-cri/pve-cri.sock
 *   --state-dir DIR    default /var/lib/pve-cri (root), ./.pve-cri
 *   --http ADDR|off    default 127.0.0.1:10380 (loopback only unless told otherwise)
 *   --backend auto|memory|lxc|proxmox   default auto
 *   --config FILE      the Proxmox node (for --backend proxmox), registries, images, CNI
 *   --cni-conf-dir DIR       the pod network's CNI config (default /etc/cni/net.d)
 *   --cni-bin-dir DIR[:DIR…] where CNI plugins are (default /opt/cni/bin:/usr/lib/cni)
 *   --hooks-dir DIR    an OCI hooks.d dir, repeatable; replaces the defaults
 *                      (/usr/share/containers/oci/hooks.d, then /etc/containers/oci/hooks.d)
 *
 * Prints one line on stdout when serving; JSON logs go to stderr (PVE_CRI_LOG sets the level).
 * SIGTERM or SIGINT: stop accepting, finish in-flight calls, close the log, remove the socket.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startCriServer } from "../adapters/cri/grpc_server.ts";
import { criHandlers } from "../adapters/cri/handlers.ts";
import { startInspectionServer } from "../adapters/http/mod.ts";
import { errorMessage } from "../lib/errors.ts";
import { rootLogger } from "../lib/log.ts";
import { defaultStateDir } from "../lib/paths.ts";
import { inspectionViews } from "../runtime/inspection.ts";
import { type Backend, missingNodeTools, openRuntime } from "../runtime/open_runtime.ts";
import type { Output } from "./output.ts";

export const version = "0.1.0";

export interface StartArgs {
  socket: string;
  stateDir: string;
  http: string | null;
  backend: Backend;
  requestedBackend: string;
  /** Why `auto` chose the memory backend. */
  why?: string;
  config: string | undefined;
  cniConfDir?: string;
  cniBinDirs?: string[];
  hooksDirs?: string[];
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

export function parseStartArgs(args: string[]): StartArgs {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      socket: { type: "string" },
      "state-dir": { type: "string" },
      http: { type: "string" },
      backend: { type: "string", default: "auto" },
      config: { type: "string" },
      "cni-conf-dir": { type: "string" },
      "cni-bin-dir": { type: "string" },
      "hooks-dir": { type: "string", multiple: true },
    },
  });
  if (positionals.length > 0) throw new Error(`Unexpected argument "${positionals[0]}"`);
  const requested = values.backend!;
  if (!["auto", "memory", "lxc", "proxmox"].includes(requested)) {
    throw new Error(`--backend must be auto, memory, lxc or proxmox, got "${requested}"`);
  }
  const chosen = requested === "auto" ? autoBackend() : { backend: requested as Backend };
  const stateDir = values["state-dir"] ?? defaultStateDir();
  const socket = values.socket ??
    (isRoot() ? "/run/pve-cri/pve-cri.sock" : `${Deno.cwd()}/.pve-cri/pve-cri.sock`);
  const http = values.http === "off" ? null : values.http ?? "127.0.0.1:10380";
  return {
    socket,
    stateDir,
    http,
    backend: chosen.backend,
    ...(chosen.why === undefined ? {} : { why: chosen.why }),
    requestedBackend: requested,
    config: values.config,
    ...(values["hooks-dir"] === undefined
      ? {}
      : { hooksDirs: values["hooks-dir"].map((d) => resolve(d)) }),
    ...(values["cni-conf-dir"] === undefined
      ? {}
      : { cniConfDir: resolve(values["cni-conf-dir"]) }),
    ...(values["cni-bin-dir"] === undefined ? {} : {
      cniBinDirs: values["cni-bin-dir"].split(":").filter((d) => d !== "").map((d) => resolve(d)),
    }),
  };
}

/** `auto`: real containers when this machine can run them, else memory, saying why not. */
export function autoBackend(): { backend: Backend; why?: string } {
  if (!isRoot()) return { backend: "memory", why: "not root, containers are not run" };
  const missing = missingNodeTools();
  if (missing !== undefined) return { backend: "memory", why: missing };
  return { backend: "lxc" };
}

/** Serves until SIGTERM or SIGINT; returns the exit status. */
export async function runStart(args: string[], out: Output): Promise<number> {
  let options: StartArgs;
  try {
    options = parseStartArgs(args);
  } catch (error) {
    out.error(`pve-cri start: ${errorMessage(error)}`);
    return 2;
  }
  const log = rootLogger.with({ component: "pve-cri" });
  let opened;
  try {
    opened = await openRuntime({
      stateDir: options.stateDir,
      backend: options.backend,
      ...(options.config === undefined ? {} : { configFile: options.config }),
      ...(options.cniConfDir === undefined ? {} : { cniConfDir: options.cniConfDir }),
      ...(options.cniBinDirs === undefined ? {} : { cniBinDirs: options.cniBinDirs }),
      ...(options.hooksDirs === undefined ? {} : { hooksDirs: options.hooksDirs }),
      log,
      version,
    });
  } catch (error) {
    out.error(`pve-cri start: ${errorMessage(error)}`);
    return 1;
  }
  let cri;
  let http;
  try {
    cri = await startCriServer({
      socketPath: options.socket,
      handlers: criHandlers(opened.runtime),
      isReady: () => !opened.registry.closed,
      log,
    });
    http = options.http === null ? undefined : await startInspectionServer({
      listen: options.http,
      views: inspectionViews(opened.runtime, opened.registry, opened.reconciler),
      log,
    });
  } catch (error) {
    await cri?.close();
    await opened.close();
    out.error(`pve-cri start: ${errorMessage(error)}`);
    return 1;
  }
  // `deno task images` finds the server of this state dir here.
  opened.lock.announce({
    socket: resolve(options.socket),
    pid: Deno.pid,
    ...(http === undefined ? {} : { http: http.url }),
  });
  const backend = options.why === undefined
    ? options.backend
    : `${options.backend}: ${options.why}`;
  out.line(`pve-cri serving CRI on unix://${options.socket} (backend ${backend})`);
  if (http !== undefined) log.info("state inspection endpoint", { url: http.url });

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGINT", stop);
  });
  log.info("shutting down");
  // A hard limit, so a stuck call cannot keep the process past the kubelet's patience.
  const deadline = setTimeout(() => {
    log.error("shutdown took too long; exiting");
    Deno.exit(1);
  }, 14_000);
  try {
    await cri.close();
    await http?.close();
    await opened.close();
  } finally {
    clearTimeout(deadline);
  }
  return 0;
}
