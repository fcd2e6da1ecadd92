/**
 * The CRI and ImageTool services as proto-loader definitions, built from a descriptor parsed
 * ahead of time (`proto/descriptor.json`, written by `deno task proto`): parsing the .proto
 * text at every start cost ~50 ms of the restart. A test checks the descriptor still matches
 * the .proto files.
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
