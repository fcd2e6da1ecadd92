/**
 * gRPC calls over the byte-level HTTP/2 test client, for tests where the server goes away
 * under an open connection: a grpc-js client in a Deno process can abort that process when it
 * receives the server's GOAWAY (denoland/deno#36788), which would take the test runner down.
 */
import { loadSync, type MethodDefinition } from "@grpc/proto-loader";
import { Buffer } from "node:buffer";
import { CRI_PROTO_PATH, type CriMessage, PROTO_LOADER_OPTIONS } from "../../adapters/cri/rpc.ts";
import {
  field,
  grpcMessage,
  grpcRequestHeaders,
  type H2Client,
  type Response,
} from "./h2_client.ts";

// deno-lint-ignore no-explicit-any
let definition: any;

function method(name: string): MethodDefinition<unknown, unknown> {
  definition ??= loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS);
  for (const service of ["runtime.v1.RuntimeService", "runtime.v1.ImageService"]) {
    const found = definition[service][name];
    if (found !== undefined) return found;
  }
  throw new TypeError(`No CRI method "${name}"`);
}

/** Opens a call on `stream` (odd, rising) and sends its one request message. */
export function startCall(
  h2: H2Client,
  stream: number,
  name: string,
  request: CriMessage = {},
): void {
  const m = method(name);
  h2.headers(stream, grpcRequestHeaders(m.path));
  h2.data(stream, grpcMessage(m.requestSerialize(request)), { endStream: true });
}

/** The call's gRPC status and message, from its trailers (or trailers-only headers). */
export function grpcStatus(response: Response): { code: number; message: string } {
  const block = response.trailers ?? response.headers;
  return {
    code: Number(field(block, "grpc-status")),
    message: decodeURIComponent(field(block, "grpc-message") ?? ""),
  };
}

/** The response messages of a call, decoded. */
export function messages(name: string, response: Response): CriMessage[] {
  const m = method(name);
  const out: CriMessage[] = [];
  for (let at = 0; at + 5 <= response.body.length;) {
    const length = new DataView(response.body.buffer, response.body.byteOffset + at + 1, 4)
      .getUint32(0);
    const bytes = response.body.subarray(at + 5, at + 5 + length);
    out.push(m.responseDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)));
    at += 5 + length;
  }
  return out;
}

export const UNAVAILABLE = 14;
