/**
 * The CRI and ImageTool services as proto-loader definitions, for grpc-js clients (`deno task
 * images` beside a server), built from the descriptor parsed ahead of time
 * (`proto/descriptor.json`, written by `deno task proto`; a test checks it still matches the
 * .proto files). The server uses proto_methods.ts.
 */
import { fromJSON, type PackageDefinition } from "@grpc/proto-loader";
import type { INamespace } from "protobufjs";
import descriptor from "../../proto/descriptor.json" with { type: "json" };
import { PROTO_LOADER_OPTIONS } from "./rpc.ts";

let definition: PackageDefinition | undefined;

/** runtime.v1 (RuntimeService, ImageService) and pvecri.v1 (ImageTool), parsed once. */
export function criPackageDefinition(): PackageDefinition {
  return definition ??= fromJSON(descriptor as INamespace, PROTO_LOADER_OPTIONS);
}
