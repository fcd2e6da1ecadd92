/**
 * The CRI gRPC server on a unix socket: both services from proto/, every method through
 * `wrap`, a socket file that is safe to reuse, and a close() that cannot hang on open streams.
 *
 * gRPC runs on pve-cri's own HTTP/2 server (h2/), not on node:http2: Deno's nghttp2 binding
 * can abort the whole process when a client sends GOAWAY (denoland/deno#36788), and every
 * client does when it disconnects.
 */
import { dirname, resolve } from "node:path";
import { errorMessage, InvalidArgumentError, RuntimeError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { acceptCall, type GrpcRoute } from "./grpc_call.ts";
import { Http2Connection } from "./h2/mod.ts";
import { type CriLimits, DEFAULT_CRI_LIMITS } from "./limits.ts";
import { serviceMethods } from "./proto_methods.ts";
import type { CriHandlers } from "./rpc.ts";
import { type ServerLifecycle, wrap } from "./wrap.ts";

export interface CriServerOptions {
  /** Path of the unix socket; relative paths are taken from the current directory. */
  socketPath: string;
  handlers: CriHandlers;
  /** Checked on every call; false answers UNAVAILABLE "runtime is not ready". */
  isReady: () => boolean;
  log: Logger;
  /**
   * How long close() lets in-flight unary calls finish before forcing them; 2 s by default:
   * their work is in the log and the next start resumes it, so a stop need not wait for it.
   */
  graceMs?: number;
  /** What clients may do: connections at once, and each connection's limits (limits.ts). */
  limits?: Partial<CriLimits>;
}

export interface CriServer {
  /** `unix:///absolute/path.sock`, as clients dial it. */
  readonly address: string;
  /**
   * Stops accepting, ends open streams (UNAVAILABLE), lets unary calls finish within the
   * grace period, then forces; removes the socket file. Idempotent.
   */
  close(): Promise<void>;
}

/** Another server answers on the socket path: pve-cri refuses to steal it. */
export class SocketInUseError extends RuntimeError {
  constructor(readonly socketPath: string) {
    super(
      "FailedPrecondition",
      `Socket "${socketPath}" is in use: another server answers on it; stop that server or choose another --socket`,
      { details: { socketPath } },
    );
  }
}

/** The path exists and is not a socket: pve-cri never deletes such a file. */
export class SocketPathTakenError extends RuntimeError {
  constructor(readonly socketPath: string) {
    super("FailedPrecondition", `Socket path "${socketPath}" exists and is not a socket`, {
      details: { socketPath },
    });
  }
}

const SERVICES = {
  runtime: "runtime.v1.RuntimeService",
  image: "runtime.v1.ImageService",
  tool: "pvecri.v1.ImageTool",
} as const;
const DEFAULT_GRACE_MS = 2_000;
// Handlers whose calls are over get this long to notice their aborted signal.
const SETTLE_MS = 1_000;
const ACCEPT_RETRY_MS = 100;
// sockaddr_un.sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;

/** Starts serving RuntimeService, ImageService and pve-cri's ImageTool on `unix://socketPath`. */
export async function startCriServer(options: CriServerOptions): Promise<CriServer> {
  const socketPath = resolve(options.socketPath);
  const log = options.log.with({ socket: socketPath });
  if (new TextEncoder().encode(socketPath).length > MAX_SOCKET_PATH_BYTES) {
    throw new InvalidArgumentError(
      `Socket path "${socketPath}" is too long: unix sockets allow ${MAX_SOCKET_PATH_BYTES} bytes`,
    );
  }
  const draining = new AbortController();
  const terminating = new AbortController();
  const running = new Set<Promise<void>>();
  const lifecycle: ServerLifecycle = {
    draining: draining.signal,
    terminating: terminating.signal,
    track(settled) {
      running.add(settled);
      void settled.then(() => running.delete(settled));
    },
  };
  const routes = buildRoutes({ options, lifecycle });

  const createdDirs = await prepareSocketPath(socketPath);
  const address = `unix://${socketPath}`;
  const listener = listen(socketPath);
  let socketInode: number | null;
  try {
    await Deno.chmod(socketPath, 0o660);
    socketInode = (await Deno.lstat(socketPath)).ino;
  } catch (error) {
    listener.close();
    throw error;
  }
  const unguard = keepServingOnStrayErrors(log);
  const connections = new Set<Http2Connection>();
  const limits = { ...DEFAULT_CRI_LIMITS, ...options.limits };
  const accepting = acceptLoop({ listener, connections, routes, log, limits });
  log.info("CRI server listening", { address });

  let closing: Promise<void> | undefined;
  const close = async () => {
    draining.abort();
    listener.close();
    await accepting;
    for (const connection of connections) connection.shutdown();
    const drained = Promise.all([...connections].map((connection) => connection.closed));
    if (!await within(drained, options.graceMs ?? DEFAULT_GRACE_MS)) {
      log.warn("CRI calls still running after the grace period: cancelling them", {
        running: running.size,
      });
      // Handlers are told first and given a turn, so their calls are answered UNAVAILABLE
      // (and those answers flushed) before the connections are cut.
      terminating.abort();
      await new Promise((resolve) => setTimeout(resolve, 0));
      await Promise.all([...connections].map((connection) => connection.destroy()));
    }
    // Every call is over on the wire now; handlers still running (their client left, or they
    // ignore their signal) are told, and get a moment to finish before the caller closes the store.
    terminating.abort();
    if (!await within(Promise.all([...running]), SETTLE_MS)) {
      log.warn("CRI handlers still running after close", { running: running.size });
    }
    await removeSocket(socketPath, socketInode);
    await removeCreatedDirs(createdDirs);
    unguard();
    log.info("CRI server closed");
  };
  return {
    address,
    close: () => (closing ??= close()),
  };
}

/** Every method of both services by path, wrapped; refuses handlers no method matches. */
function buildRoutes(args: {
  options: CriServerOptions;
  lifecycle: ServerLifecycle;
}): Map<string, GrpcRoute> {
  const { options, lifecycle } = args;
  const routes = new Map<string, GrpcRoute>();
  for (const [key, serviceName] of Object.entries(SERVICES) as [keyof CriHandlers, string][]) {
    const service = serviceMethods(serviceName);
    const handlers = options.handlers[key] ?? {};
    for (const name of Object.keys(handlers)) {
      if (!service.has(name)) {
        throw new TypeError(`Handler "${name}" names no method of ${serviceName}`);
      }
    }
    for (const [name, method] of service) {
      routes.set(method.path, {
        requestStream: method.requestStream,
        decodeRequest: method.decodeRequest,
        handle: wrap({
          method: name,
          streaming: method.responseStream,
          handler: handlers[name],
          encode: method.encodeResponse,
          isReady: options.isReady,
          log: options.log,
          lifecycle,
        }),
      });
    }
  }
  return routes;
}

function listen(socketPath: string): Deno.Listener {
  try {
    return Deno.listen({ transport: "unix", path: socketPath });
  } catch (error) {
    throw new RuntimeError(
      "Unavailable",
      `Cannot listen on "${socketPath}": ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

/** Accepts connections until the listener closes; each runs on its own. */
async function acceptLoop(args: {
  listener: Deno.Listener;
  connections: Set<Http2Connection>;
  routes: Map<string, GrpcRoute>;
  log: Logger;
  limits: CriLimits;
}): Promise<void> {
  const { listener, connections, routes, log, limits } = args;
  const route = (path: string) => routes.get(path);
  for (;;) {
    let socket: Deno.Conn;
    try {
      socket = await listener.accept();
    } catch (error) {
      if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
        return; // the listener was closed
      }
      // Out of file descriptors and the like: wait a little rather than spin.
      log.warn("CRI server cannot accept a connection", { error: errorMessage(error) });
      await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
      continue;
    }
    if (connections.size >= limits.maxConnections) {
      log.warn("CRI client refused: too many connections", { max: limits.maxConnections });
      socket.close();
      continue;
    }
    const connection = new Http2Connection(socket, {
      log,
      onStream: (stream) => acceptCall({ stream, route, log }),
      idleTimeoutMs: limits.idleTimeoutMs,
      limits,
    });
    connections.add(connection);
    void connection.closed.then(() => connections.delete(connection));
  }
}

/** Creates the parent directory (0750) if needed; removes a stale socket, refuses a live one. */
/**
 * Makes the socket's directory if needed and clears a stale socket; returns the directories
 * it made, outermost first, for close() to remove again.
 */
async function prepareSocketPath(socketPath: string): Promise<string[]> {
  const created: string[] = [];
  for (let dir = dirname(socketPath); !await exists(dir); dir = dirname(dir)) {
    created.unshift(dir);
  }
  for (const dir of created) {
    await Deno.mkdir(dir, { mode: 0o750 });
    await Deno.chmod(dir, 0o750); // mkdir's mode is filtered by the umask
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(socketPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return created;
    throw error;
  }
  if (!info.isSocket) throw new SocketPathTakenError(socketPath);
  if (await answers(socketPath)) throw new SocketInUseError(socketPath);
  await Deno.remove(socketPath); // stale: left by a process that died without cleaning up
  return created;
}

/** Removes the directories prepareSocketPath made, innermost first, while they are empty. */
async function removeCreatedDirs(created: readonly string[]): Promise<void> {
  for (const dir of [...created].reverse()) {
    try {
      await Deno.remove(dir); // not recursive: something else put there stays, with its dir
    } catch {
      return;
    }
  }
}

async function answers(socketPath: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path: socketPath });
    conn.close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return false;
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Removes the socket file unless it is gone or another server has replaced it since. */
async function removeSocket(socketPath: string, inode: number | null): Promise<void> {
  try {
    const info = await Deno.lstat(socketPath);
    if (info.isSocket && info.ino === inode) await Deno.remove(socketPath);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** True when `promise` settles within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The process-wide safety net while the server runs: a handler's stray rejection or a throw in
 * its timer callback is logged instead of ending the process (and every other call with it).
 */
function keepServingOnStrayErrors(log: Logger): () => void {
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    log.error("Unhandled rejection: pve-cri keeps serving", { error: errorMessage(event.reason) });
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    log.error("Uncaught exception: pve-cri keeps serving", {
      error: errorMessage(event.error ?? event.message),
    });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}
