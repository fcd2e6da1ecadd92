/**
 * The CRI gRPC server on a unix socket: both services from proto/, every method through
 * `wrap`, a socket file that is safe to reuse, and a close() that cannot hang on open streams.
 */
import * as grpc from "@grpc/grpc-js";
import { loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { dirname, resolve } from "node:path";
import { errorMessage, InvalidArgumentError, RuntimeError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { CRI_PROTO_PATH, type CriHandlers, PROTO_LOADER_OPTIONS } from "./rpc.ts";
import { type ServerLifecycle, wrap } from "./wrap.ts";

export interface CriServerOptions {
  /** Path of the unix socket; relative paths are taken from the current directory. */
  socketPath: string;
  handlers: CriHandlers;
  /** Checked on every call; false answers UNAVAILABLE "runtime is not ready". */
  isReady: () => boolean;
  log: Logger;
  /** How long close() lets in-flight unary calls finish before forcing them; 10 s by default. */
  graceMs?: number;
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
} as const;
const DEFAULT_GRACE_MS = 10_000;
// Handlers whose calls are over get this long to notice their aborted signal.
const SETTLE_MS = 1_000;
// sockaddr_un.sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;

let definition: PackageDefinition | undefined;

/** Starts serving RuntimeService and ImageService on `unix://socketPath`. */
export async function startCriServer(options: CriServerOptions): Promise<CriServer> {
  const socketPath = resolve(options.socketPath);
  const log = options.log.with({ socket: socketPath });
  if (new TextEncoder().encode(socketPath).length > MAX_SOCKET_PATH_BYTES) {
    throw new InvalidArgumentError(
      `Socket path "${socketPath}" is too long: unix sockets allow ${MAX_SOCKET_PATH_BYTES} bytes`,
    );
  }
  definition ??= loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);

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

  const server = new grpc.Server();
  registerServices({ server, definition, options, lifecycle });

  await prepareSocketPath(socketPath);
  const address = `unix://${socketPath}`;
  await listen(server, socketPath);
  let socketInode: number | null;
  try {
    await Deno.chmod(socketPath, 0o660);
    socketInode = (await Deno.lstat(socketPath)).ino;
  } catch (error) {
    server.forceShutdown();
    throw error;
  }
  const unguard = keepServingOnStrayErrors(log);
  log.info("CRI server listening", { address });

  let closing: Promise<void> | undefined;
  const close = async () => {
    draining.abort();
    const shutDown = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    if (!await within(shutDown, options.graceMs ?? DEFAULT_GRACE_MS)) {
      log.warn("CRI calls still running after the grace period: cancelling them", {
        running: running.size,
      });
      server.forceShutdown();
    }
    // Every call is over on the wire now; handlers still running (their client left, or they
    // ignore their signal) are told, and get a moment to finish before the caller closes the store.
    terminating.abort();
    if (!await within(Promise.all([...running]), SETTLE_MS)) {
      log.warn("CRI handlers still running after close", { running: running.size });
    }
    await removeSocket(socketPath, socketInode);
    unguard();
    log.info("CRI server closed");
  };
  return {
    address,
    close: () => (closing ??= close()),
  };
}

/** Adds both services with every method wrapped; refuses handlers no method matches. */
function registerServices(args: {
  server: grpc.Server;
  definition: PackageDefinition;
  options: CriServerOptions;
  lifecycle: ServerLifecycle;
}): void {
  const { server, definition, options, lifecycle } = args;
  for (const [key, serviceName] of Object.entries(SERVICES) as [keyof CriHandlers, string][]) {
    const service = definition[serviceName] as grpc.ServiceDefinition;
    const handlers = options.handlers[key];
    for (const name of Object.keys(handlers)) {
      if (!(name in service)) {
        throw new TypeError(`Handler "${name}" names no method of ${serviceName}`);
      }
    }
    const implementation: grpc.UntypedServiceImplementation = {};
    const encodingService: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const [name, method] of Object.entries(service)) {
      implementation[name] = wrap({
        method: name,
        streaming: method.responseStream,
        handler: handlers[name],
        encode: method.responseSerialize,
        isReady: options.isReady,
        log: options.log,
        lifecycle,
      });
      // The wrapper encodes responses itself, so a malformed one fails with a useful message.
      encodingService[name] = {
        ...method,
        responseSerialize: passEncoded(method.responseSerialize),
      };
    }
    server.addService(encodingService, implementation);
  }
}

/** grpc-js's serializer for messages the wrapper already encoded. */
function passEncoded(encode: (value: unknown) => Buffer): (value: unknown) => Buffer {
  return (value) => value instanceof Uint8Array ? value as Buffer : encode(value);
}

function listen(server: grpc.Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (error) => {
      if (error === null) return resolve();
      reject(
        new RuntimeError("Unavailable", `Cannot listen on "${socketPath}": ${error.message}`, {
          cause: error,
        }),
      );
    });
  });
}

/** Creates the parent directory (0750) if needed; removes a stale socket, refuses a live one. */
async function prepareSocketPath(socketPath: string): Promise<void> {
  const dir = dirname(socketPath);
  if (!await exists(dir)) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o750 });
    await Deno.chmod(dir, 0o750); // mkdir's mode is filtered by the umask
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(socketPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) throw new SocketPathTakenError(socketPath);
  if (await answers(socketPath)) throw new SocketInUseError(socketPath);
  await Deno.remove(socketPath); // stale: left by a process that died without cleaning up
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
