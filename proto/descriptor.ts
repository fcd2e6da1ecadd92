/**
 * `deno task proto`: writes proto/descriptor.json, the parsed form of api.proto and
 * image_tool.proto that the server loads at start. Run it after editing a .proto file.
 */
import protobuf from "protobufjs";
import { CRI_PROTO_PATH, IMAGE_TOOL_PROTO_PATH } from "../adapters/cri/rpc.ts";

export const DESCRIPTOR_PATH = new URL("./descriptor.json", import.meta.url).pathname;

/** The descriptor of the .proto files as they are now, as descriptor.json holds it. */
export function currentDescriptor(): protobuf.INamespace {
  // keepCase, as PROTO_LOADER_OPTIONS parses: field names stay as the kubelet sends them.
  const root = new protobuf.Root().loadSync([CRI_PROTO_PATH, IMAGE_TOOL_PROTO_PATH], {
    keepCase: true,
  });
  return root.toJSON();
}

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    // deno-lint-ignore no-console
    console.log("Usage: deno task proto\n\nWrites proto/descriptor.json from proto/*.proto.");
    Deno.exit(0);
  }
  Deno.writeTextFileSync(DESCRIPTOR_PATH, JSON.stringify(currentDescriptor(), null, 2) + "\n");
}
