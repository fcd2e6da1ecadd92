/**
 * `deno task start`: serve CRI on a unix socket, and the state-inspection endpoint. The usage
 * below is what `--help` prints.
 */
import { resolve } from "node:path";
import { startCriServer } from "../adapters/cri/grpc_server.ts";
import { criHandlers } from "../adapters/cri/handlers.ts";
import { startInspectionServer } from "../adapters/http/mod.ts";
import { errorMessage, InvalidArgumentError } from "../lib/errors.ts";
import { rootLogger } from "../lib/log.ts";
import { defaultStateDir } from "../lib/paths.ts";
import { inspectionViews } from "../runtime/inspection.ts";
import {
  type Backend,
  missingNodeTools,
  openRuntime,
  StateDirInUseError,
} from "../runtime/open_runtime.ts";
import { parseCommandLine, UsageError } from "../lib/command_line.ts";
import type { Output } from "./output.ts";

export const version = "0.1.0";

export const startUsage = `Usage: deno task start [OPTIONS]

Serves the CRI (RuntimeService, ImageService) on a unix socket, for the kubelet and crictl.

  --socket PATH        default /run/pve-cri/pve-cri.sock as root, ./.pve-cri/pve-cri.sock
                       otherwise
  --state-dir DIR      the event log and node state; default /var/lib/pve-cri as root,
                       ./.pve-cri otherwise; one server per state dir
  --http ADDR|off      the state inspection endpoint; default 127.0.0.1:10380 (port 0: any
                       free port, printed when serving)
  --backend auto|memory|lxc|proxmox
                       default auto: lxc as root with LXC installed, memory otherwise
  --config FILE        the Proxmox node (for --backend proxmox), registries, images, CNI, hooks
  --cni-conf-dir DIR   the pod network's CNI config; default /etc/cni/net.d
  --cni-bin-dir DIR[:DIR...]
                       where CNI plugins are; default /opt/cni/bin:/usr/lib/cni
  --hooks-dir DIR      an OCI hooks.d dir, repeatable; replaces the defaults
                       (/usr/share/containers/oci/hooks.d, /etc/containers/oci/hooks.d)
  -h, --help           this text

Prints one line on stdout when serving (and one with the HTTP URL); JSON logs go to stderr,
their level from PVE_CRI_LOG (debug, info, warn, error; default warn). SIGTERM or SIGINT
stops it: no new calls, calls in flight get 2 s, the log is closed, the socket removed.

Exit status:
  0  stopped by SIGTERM or SIGINT
  1  a runtime error: the socket is taken, Proxmox or the node cannot be used, or the
     shutdown took longer than 14 s
  2  bad arguments, a bad --config file or a bad PVE_CRI_* variable
  3  the state dir is in use by another pve-cri (its pid is named)`;

/** `start`'s exit statuses (see startUsage). */
export const StartExit = { stopped: 0, failed: 1, usage: 2, stateDirInUse: 3 } as const;

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

/** The options, or undefined for `--help`; throws UsageError. */
export function parseStartArgs(args: string[]): StartArgs | undefined {
  const { values, positionals, help } = parseCommandLine(args, {
    socket: { type: "string" },
    "state-dir": { type: "string" },
    http: { type: "string" },
    backend: { type: "string", default: "auto" },
    config: { type: "string" },
    "cni-conf-dir": { type: "string" },
    "cni-bin-dir": { type: "string" },
    "hooks-dir": { type: "string", multiple: true },
  });
  if (help) return undefined;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const requested = values.backend!;
  if (!["auto", "memory", "lxc", "proxmox"].includes(requested)) {
    throw new UsageError(`--backend must be auto, memory, lxc or proxmox, got "${requested}"`);
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
  let options: StartArgs | undefined;
  try {
    options = parseStartArgs(args);
  } catch (error) {
    out.error(`pve-cri start: ${errorMessage(error)}`);
    return StartExit.usage;
  }
  if (options === undefined) {
    out.line(startUsage);
    return StartExit.stopped;
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
    if (error instanceof StateDirInUseError) return StartExit.stateDirInUse;
    return error instanceof InvalidArgumentError ? StartExit.usage : StartExit.failed;
  }
  let cri;
  let http;
  try {
    cri = await startCriServer({
      socketPath: options.socket,
      handlers: criHandlers(opened.runtime),
      isReady: () => !opened.registry.closed,
      log,
      limits: opened.settings.cri,
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
    return error instanceof InvalidArgumentError ? StartExit.usage : StartExit.failed;
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
  // The URL with the port it got (--http HOST:0 asks for any free one); the server logs it too.
  if (http !== undefined) out.line(`pve-cri state inspection on ${http.url}`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGINT", stop);
  });
  log.info("shutting down");
  // A hard limit, so a stuck call cannot keep the process past the kubelet's patience.
  const deadline = setTimeout(() => {
    log.error("shutdown took too long; exiting");
    Deno.exit(StartExit.failed);
  }, 14_000);
  try {
    await cri.close();
    await http?.close();
    await opened.close();
  } finally {
    clearTimeout(deadline);
  }
  return StartExit.stopped;
}
