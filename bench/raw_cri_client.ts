/**
 * A minimal CRI client for benchmarks: unary calls over one HTTP/2 connection with large
 * flow-control windows (as grpc-go's BDP estimation grows them for the kubelet), messages
 * encoded with the project's proto definition. It measures the server, not a heavy client:
 * grpc-js adds 1–2 ms and its own GC pauses to every call, and reads 64 KB per round trip.
 */
import { loadSync } from "@grpc/proto-loader";
import { Buffer } from "node:buffer";
import { CRI_PROTO_PATH, PROTO_LOADER_OPTIONS } from "../adapters/cri/rpc.ts";
import {
  field,
  FRAME,
  grpcMessage,
  grpcRequestHeaders,
  H2Client,
} from "../tests/_support/h2_client.ts";

const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const maxWindow = 2 ** 31 - 1;

interface MethodCodec {
  path: string;
  requestSerialize(message: unknown): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

export class RawCriClient implements AsyncDisposable {
  readonly #h2: H2Client;
  readonly #methods = new Map<string, MethodCodec>();
  #nextStream = 1;

  private constructor(h2: H2Client) {
    this.#h2 = h2;
    // deno-lint-ignore no-explicit-any
    const definition = loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS) as any;
    for (const service of ["runtime.v1.RuntimeService", "runtime.v1.ImageService"]) {
      for (const [name, method] of Object.entries(definition[service])) {
        this.#methods.set(name, method as MethodCodec);
      }
    }
  }

  static async connect(socketPath: string): Promise<RawCriClient> {
    const h2 = await H2Client.connect(socketPath, {
      settings: [[SETTINGS_INITIAL_WINDOW_SIZE, maxWindow]],
    });
    h2.windowUpdate(0, maxWindow - 65_535);
    return new RawCriClient(h2);
  }

  /** One unary call; `decode: false` returns the response's bytes undecoded. */
  async call(
    method: string,
    request: unknown,
    options: { decode?: boolean } = {},
  ): Promise<unknown> {
    const codec = this.#methods.get(method);
    if (codec === undefined) throw new TypeError(`No CRI method "${method}"`);
    const stream = this.#nextStream;
    this.#nextStream += 2;
    this.#h2.headers(stream, grpcRequestHeaders(codec.path));
    this.#h2.data(stream, grpcMessage(codec.requestSerialize(request)), { endStream: true });
    const response = await this.#h2.response(stream, 30_000);
    // Give the connection window back: the stream windows are already at the maximum.
    if (response.body.length > 0) this.#h2.windowUpdate(0, response.body.length);
    const status = field(response.trailers ?? response.headers, "grpc-status");
    if (status !== "0") {
      const message = field(response.trailers ?? response.headers, "grpc-message") ?? "";
      throw new Error(
        `${method} failed with gRPC status ${status}: ${decodeURIComponent(message)}`,
      );
    }
    const payload = response.body.subarray(5);
    if (options.decode === false) return payload;
    return codec.responseDeserialize(
      Buffer.from(payload.buffer, payload.byteOffset, payload.length),
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#h2.frame(FRAME.GOAWAY, 0, 0, new Uint8Array(8));
    await this.#h2[Symbol.asyncDispose]();
  }
}
