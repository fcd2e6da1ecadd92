/** A CRI server on a socket in a fresh temp dir, with a connected client and captured logs. */
import { type LogFields, Logger } from "../../../lib/log.ts";
import {
  type CriServer,
  type CriServerOptions,
  startCriServer,
} from "../../../adapters/cri/grpc_server.ts";
import { loadSync, type MethodDefinition, type PackageDefinition } from "@grpc/proto-loader";
import {
  CRI_PROTO_PATH,
  type CriHandlers,
  type CriMessage,
  PROTO_LOADER_OPTIONS,
} from "../../../adapters/cri/rpc.ts";
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
      handlers: {
        runtime: handlers.runtime ?? {},
        image: handlers.image ?? {},
        tool: handlers.tool ?? {},
      },
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

let definition: PackageDefinition | undefined;

/** Protobuf encoding of one CRI method's messages, as a raw client needs it. */
export function codec(method: string, service = "runtime.v1.RuntimeService") {
  definition ??= loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const found = (definition[service] as Record<string, MethodDefinition<unknown, unknown>>)[method];
  if (found === undefined) throw new TypeError(`No method ${service}/${method}`);
  return {
    path: found.path,
    encodeRequest: (request: CriMessage): Uint8Array => found.requestSerialize(request),
    decodeResponse: (bytes: Uint8Array): CriMessage => found.responseDeserialize(bytes as Buffer),
  };
}
