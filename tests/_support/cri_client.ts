/**
 * A promisified grpc-js client for both CRI services over a unix socket, built from proto/ with
 * the server's loader options: what crictl or the kubelet would send, without crictl.
 *
 *   const cri = await connect(socketPath);
 *   const { pod_sandbox_id } = await cri.runtime.RunPodSandbox({ config }, { deadlineMs: 5000 });
 *   using events = cri.runtime.GetContainerEvents({});
 *   const event = await events.next();
 *   cri.close();
 *
 * Errors reject with grpc-js's ServiceError: compare `code` with `status.NOT_FOUND` etc. and read
 * the server's message from `details`.
 */
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { CRI_PROTO_PATH, type CriMessage, PROTO_LOADER_OPTIONS } from "../../adapters/cri/rpc.ts";

export { type CriMessage } from "../../adapters/cri/rpc.ts";
export { status } from "@grpc/grpc-js";
export type ServiceError = grpc.ServiceError;

/** RuntimeService methods answering one message. */
export const RUNTIME_UNARY_METHODS = [
  "Version",
  "RunPodSandbox",
  "StopPodSandbox",
  "RemovePodSandbox",
  "PodSandboxStatus",
  "ListPodSandbox",
  "CreateContainer",
  "StartContainer",
  "StopContainer",
  "RemoveContainer",
  "ListContainers",
  "ContainerStatus",
  "UpdateContainerResources",
  "ReopenContainerLog",
  "ExecSync",
  "Exec",
  "Attach",
  "PortForward",
  "ContainerStats",
  "ListContainerStats",
  "PodSandboxStats",
  "ListPodSandboxStats",
  "UpdateRuntimeConfig",
  "Status",
  "CheckpointContainer",
  "CheckpointPod",
  "RestorePod",
  "ListMetricDescriptors",
  "ListPodSandboxMetrics",
  "RuntimeConfig",
  "UpdatePodSandboxResources",
] as const;

/** RuntimeService methods answering a stream. */
export const RUNTIME_STREAM_METHODS = [
  "StreamPodSandboxes",
  "StreamContainers",
  "StreamContainerStats",
  "StreamPodSandboxStats",
  "GetContainerEvents",
  "StreamPodSandboxMetrics",
] as const;

export const IMAGE_UNARY_METHODS = [
  "ListImages",
  "ImageStatus",
  "PullImage",
  "RemoveImage",
  "ImageFsInfo",
] as const;

export const IMAGE_STREAM_METHODS = ["StreamImages"] as const;

export interface CallOptions {
  /** Milliseconds from now; no deadline when absent. */
  deadlineMs?: number;
}

/** One unary method: resolves with the response, rejects with a grpc-js ServiceError. */
export type UnaryCall = (request?: CriMessage, options?: CallOptions) => Promise<CriMessage>;

/** An open server stream; `using` cancels it at scope end. */
export interface CriStream extends Disposable {
  /** The next message; undefined once the stream ended with OK; rejects if it ended otherwise. */
  next(options?: { timeoutMs?: number }): Promise<CriMessage | undefined>;
  /** The final status, whether OK or not (CANCELLED after cancel()). */
  readonly status: Promise<grpc.StatusObject>;
  cancel(): void;
}

export type StreamCall = (request?: CriMessage, options?: CallOptions) => CriStream;

export type RuntimeClient =
  & Record<(typeof RUNTIME_UNARY_METHODS)[number], UnaryCall>
  & Record<(typeof RUNTIME_STREAM_METHODS)[number], StreamCall>;
export type ImageClient =
  & Record<(typeof IMAGE_UNARY_METHODS)[number], UnaryCall>
  & Record<(typeof IMAGE_STREAM_METHODS)[number], StreamCall>;

export interface CriClient {
  runtime: RuntimeClient;
  image: ImageClient;
  close(): void;
}

type ServiceClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
) => grpc.Client & Record<string, (...args: unknown[]) => unknown>;

let constructors:
  | { runtime: ServiceClientConstructor; image: ServiceClientConstructor }
  | undefined;

function clientConstructors() {
  if (constructors) return constructors;
  const loaded = grpc.loadPackageDefinition(loadSync(CRI_PROTO_PATH, PROTO_LOADER_OPTIONS));
  const v1 = (loaded.runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
  constructors = {
    runtime: v1.RuntimeService as unknown as ServiceClientConstructor,
    image: v1.ImageService as unknown as ServiceClientConstructor,
  };
  return constructors;
}

/** Connects to a CRI server on a unix socket; rejects if none answers within `timeoutMs`. */
export async function connect(
  socketPath: string,
  options: { timeoutMs?: number } = {},
): Promise<CriClient> {
  const address = `unix://${socketPath}`;
  const credentials = grpc.credentials.createInsecure();
  const { runtime: Runtime, image: Image } = clientConstructors();
  const runtimeClient = new Runtime(address, credentials);
  const imageClient = new Image(address, credentials);
  const close = () => {
    runtimeClient.close();
    imageClient.close();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      runtimeClient.waitForReady(Date.now() + (options.timeoutMs ?? 5_000), (error) => {
        if (error) reject(new Error(`No CRI server answers on "${socketPath}": ${error.message}`));
        else resolve();
      });
    });
  } catch (error) {
    close();
    throw error;
  }
  return {
    runtime: bind(runtimeClient, RUNTIME_UNARY_METHODS, RUNTIME_STREAM_METHODS) as RuntimeClient,
    image: bind(imageClient, IMAGE_UNARY_METHODS, IMAGE_STREAM_METHODS) as ImageClient,
    close,
  };
}

function bind(
  client: InstanceType<ServiceClientConstructor>,
  unary: readonly string[],
  streams: readonly string[],
): Record<string, UnaryCall | StreamCall> {
  const methods: Record<string, UnaryCall | StreamCall> = {};
  for (const name of unary) {
    methods[name] = (request = {}, options = {}) =>
      new Promise((resolve, reject) => {
        const method = client[name] as (
          request: CriMessage,
          callOptions: grpc.CallOptions,
          callback: (error: grpc.ServiceError | null, response: CriMessage) => void,
        ) => unknown;
        method.call(client, request, callOptions(options), (error, response) => {
          if (error) reject(error);
          else resolve(response);
        });
      });
  }
  for (const name of streams) {
    methods[name] = (request = {}, options = {}) => {
      const method = client[name] as (
        request: CriMessage,
        callOptions: grpc.CallOptions,
      ) => grpc.ClientReadableStream<CriMessage>;
      return readStream(method.call(client, request, callOptions(options)));
    };
  }
  return methods;
}

function callOptions(options: CallOptions): grpc.CallOptions {
  return options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
}

/** Queues a grpc-js readable stream's messages so tests can await them one by one. */
function readStream(call: grpc.ClientReadableStream<CriMessage>): CriStream {
  const queued: CriMessage[] = [];
  const waiting: { resolve: (m: CriMessage | undefined) => void; reject: (e: unknown) => void }[] =
    [];
  let ended: { error?: grpc.ServiceError } | undefined;
  let resolveStatus: (status: grpc.StatusObject) => void = () => {};
  const status = new Promise<grpc.StatusObject>((resolve) => resolveStatus = resolve);

  const finish = (error?: grpc.ServiceError) => {
    if (ended) return;
    ended = error ? { error } : {};
    for (const waiter of waiting.splice(0)) {
      if (error) waiter.reject(error);
      else waiter.resolve(undefined);
    }
  };
  call.on("data", (message: CriMessage) => {
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(message);
    else queued.push(message);
  });
  call.on("error", (error: grpc.ServiceError) => finish(error));
  call.on("end", () => finish());
  call.on("status", (s: grpc.StatusObject) => resolveStatus(s));

  const cancel = () => call.cancel();
  return {
    status,
    cancel,
    [Symbol.dispose]: cancel,
    next({ timeoutMs = 5_000 } = {}) {
      if (queued.length > 0) return Promise.resolve(queued.shift());
      if (ended) {
        return ended.error ? Promise.reject(ended.error) : Promise.resolve(undefined);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const index = waiting.indexOf(waiter);
          if (index >= 0) waiting.splice(index, 1);
          reject(new Error(`No stream message within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = {
          resolve: (m: CriMessage | undefined) => {
            clearTimeout(timer);
            resolve(m);
          },
          reject: (e: unknown) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        waiting.push(waiter);
      });
    },
  };
}
