import type { PodRuntime } from "../../../runtime/api.ts";
import type { UnaryHandler } from "../rpc.ts";

export const version = (rt: PodRuntime): UnaryHandler => () =>
  Promise.resolve({
    version: "0.1.0",
    runtime_name: rt.name,
    runtime_version: rt.version,
    runtime_api_version: "v1",
  });
