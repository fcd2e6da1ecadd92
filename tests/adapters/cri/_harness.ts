/** A CRI server on a socket in a fresh temp dir, with a connected client and captured logs. */
import { type LogFields, Logger } from "../../../lib/log.ts";
import {
  type CriServer,
  type CriServerOptions,
  startCriServer,
} from "../../../adapters/cri/grpc_server.ts";
import type { CriHandlers } from "../../../adapters/cri/rpc.ts";
import { connect, type CriClient } from "../../_support/cri_client.ts";

export interface Harness extends AsyncDisposable {
  dir: string;
  socketPath: string;
  server: CriServer;
  client: CriClient;
  /** Every log line the server wrote, parsed. */
  logs: (LogFields & { level: string; msg: string })[];
}

export async function serve(
  handlers: Partial<CriHandlers> = {},
  options: Partial<Omit<CriServerOptions, "handlers" | "log">> = {},
): Promise<Harness> {
  const dir = await Deno.makeTempDir({ prefix: "pve-cri-grpc-" });
  const socketPath = options.socketPath ?? `${dir}/run/cri.sock`;
  const logs: Harness["logs"] = [];
  const log = new Logger("debug", {}, { write: (line) => logs.push(JSON.parse(line)) });
  let server: CriServer;
  let client: CriClient;
  try {
    server = await startCriServer({
      isReady: () => true,
      ...options,
      socketPath,
      handlers: { runtime: handlers.runtime ?? {}, image: handlers.image ?? {} },
      log,
    });
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  try {
    client = await connect(socketPath);
  } catch (error) {
    await server.close();
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  return {
    dir,
    socketPath,
    server,
    client,
    logs,
    async [Symbol.asyncDispose]() {
      client.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
