/**
 * Where `deno task images` does its work: in this process when no server owns the state dir
 * (the runtime opened here, as `start` opens it), or through the server that does, over its
 * socket (the CRI ImageService for listing and removal, pve-cri's ImageTool for pull and
 * import with progress), so the server sees the image at once.
 */
import * as grpc from "@grpc/grpc-js";
import { criPackageDefinition } from "../adapters/cri/proto_descriptor.ts";
import { statusCodeOf } from "../adapters/cri/grpc_status.ts";
import { RuntimeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { ImageView, PullProgress, RegistryAuth } from "../runtime/api.ts";
import { type Backend, openRuntime } from "../runtime/open_runtime.ts";

export interface ImageRow {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  template: string;
}

export interface ImagesBackend {
  readonly where: string;
  pull(
    reference: string,
    auth: RegistryAuth | undefined,
    onProgress: (p: PullProgress) => void,
  ): Promise<ImageRow>;
  import(
    path: string,
    name: string | undefined,
    onProgress: (p: PullProgress) => void,
  ): Promise<ImageRow>;
  list(): Promise<ImageRow[]>;
  remove(reference: string): Promise<void>;
  close(): Promise<void>;
}

const call = { meta: { method: "images" } };

function rowOf(view: ImageView): ImageRow {
  return {
    id: view.id,
    repoTags: view.repoTags,
    repoDigests: view.repoDigests,
    size: view.size,
    template: view.volid,
  };
}

/** The runtime opened in this process: no server owns the state dir. */
export async function localBackend(options: {
  stateDir: string;
  backend: Backend;
  configFile?: string;
  log: Logger;
}): Promise<ImagesBackend> {
  const rt = await openRuntime({
    stateDir: options.stateDir,
    backend: options.backend,
    ...(options.configFile === undefined ? {} : { configFile: options.configFile }),
    log: options.log,
    version: "images",
  });
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort(new RuntimeError("Aborted", "Interrupted"));
  Deno.addSignalListener("SIGINT", onSignal);
  const withSignal = { ...call, signal: interrupt.signal };
  return {
    where: `state dir ${options.stateDir}`,
    async pull(reference, auth, onProgress) {
      return rowOf(
        await rt.runtime.pullImage(reference, withSignal, {
          ...(auth ? { auth } : {}),
          onProgress,
        }),
      );
    },
    async import(path, name, onProgress) {
      return rowOf(
        await rt.runtime.importImage(path, withSignal, { ...(name ? { name } : {}), onProgress }),
      );
    },
    async list() {
      return (await rt.runtime.images()).map(rowOf);
    },
    async remove(reference) {
      await rt.runtime.removeImage(reference, withSignal);
    },
    async close() {
      Deno.removeSignalListener("SIGINT", onSignal);
      await rt.close();
    },
  };
}

/** A message as proto-loader decodes it (no generated types). */
// deno-lint-ignore no-explicit-any
type Message = any;

type GrpcClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
type ClientConstructor = new (address: string, credentials: grpc.ChannelCredentials) => GrpcClient;

/** The server that owns the state dir, over its socket. */
export async function remoteBackend(socket: string): Promise<ImagesBackend> {
  const loaded = grpc.loadPackageDefinition(
    criPackageDefinition(),
  );
  const pkg = loaded as Message;
  const address = `unix://${socket}`;
  const credentials = grpc.credentials.createInsecure();
  const images = new (pkg.runtime.v1.ImageService as ClientConstructor)(address, credentials);
  const tool = new (pkg.pvecri.v1.ImageTool as ClientConstructor)(address, credentials);
  await new Promise<void>((resolve, reject) =>
    images.waitForReady(Date.now() + 5_000, (error) => error ? reject(error) : resolve())
  ).catch((error) => {
    images.close();
    tool.close();
    throw new RuntimeError(
      "Unavailable",
      `The server on ${socket} does not answer: ${error.message}`,
    );
  });
  const unary = (method: string, request: unknown) =>
    new Promise<Message>((resolve, reject) => {
      const fn = images[method] as (
        r: unknown,
        cb: (e: grpc.ServiceError | null, m: Message) => void,
      ) => void;
      fn.call(images, request, (error, message) =>
        error ? reject(fromGrpc(error)) : resolve(message));
    });
  const stream = (method: string, request: unknown, onProgress: (p: PullProgress) => void) =>
    new Promise<ImageRow>((resolve, reject) => {
      const fn = tool[method] as (r: unknown) => grpc.ClientReadableStream<Message>;
      const callStream = fn.call(tool, request);
      let image: ImageRow | undefined;
      const onSignal = () => callStream.cancel();
      Deno.addSignalListener("SIGINT", onSignal);
      const done = () => Deno.removeSignalListener("SIGINT", onSignal);
      callStream.on("data", (message) => {
        if (message.resolved) {
          onProgress({
            kind: "resolved",
            imageId: message.resolved.image_id,
            layers: message.resolved.layers.map((l: { digest: string; size: string }) => ({
              digest: l.digest,
              size: Number(l.size),
            })),
          });
        } else if (message.layer) {
          onProgress({
            kind: "layer",
            digest: message.layer.digest,
            done: Number(message.layer.done),
            total: Number(message.layer.total),
          });
        } else if (message.template) {
          onProgress({
            kind: "template",
            done: Number(message.template.done),
            total: Number(message.template.total),
          });
        } else if (message.image) {
          image = {
            id: message.image.id,
            repoTags: message.image.repo_tags,
            repoDigests: message.image.repo_digests,
            size: Number(message.image.size),
            template: message.image.template,
          };
        }
      });
      callStream.on("error", (error: grpc.ServiceError) => {
        done();
        reject(fromGrpc(error));
      });
      callStream.on("end", () => {
        done();
        if (image === undefined) reject(new RuntimeError("Internal", "The server sent no image"));
        else resolve(image);
      });
    });
  return {
    where: `the server on ${socket}`,
    pull: (reference, auth, onProgress) =>
      stream("Pull", {
        reference,
        username: auth?.username ?? "",
        password: auth?.password ?? "",
        identity_token: auth?.identityToken ?? "",
        registry_token: auth?.registryToken ?? "",
      }, onProgress),
    import: (path, name, onProgress) => stream("Import", { path, name: name ?? "" }, onProgress),
    async list() {
      const response = await unary("ListImages", {});
      return response.images.map((i: Message) => ({
        id: i.id,
        repoTags: i.repo_tags,
        repoDigests: i.repo_digests,
        size: Number(i.size),
        template: "",
      }));
    },
    async remove(reference) {
      await unary("RemoveImage", { image: { image: reference } });
    },
    close() {
      images.close();
      tool.close();
      return Promise.resolve();
    },
  };
}

/** A gRPC error as one of ours: the server's code and message. */
function fromGrpc(error: grpc.ServiceError): RuntimeError {
  return new RuntimeError(statusCodeOf(error.code), error.details || error.message);
}
