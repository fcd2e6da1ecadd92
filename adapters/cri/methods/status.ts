import type { PodRuntime } from "../../../runtime/api.ts";
import type { Message } from "../convert.ts";
import type { UnaryHandler } from "../rpc.ts";

/** RuntimeReady and NetworkReady (computed from CNI), and verbose info as JSON values. */
export const status = (rt: PodRuntime): UnaryHandler => async (request: Message) => {
  const r = await rt.readiness();
  return {
    status: {
      conditions: [
        { type: "RuntimeReady", status: r.runtimeReady, reason: "", message: "" },
        {
          type: "NetworkReady",
          status: r.networkReady,
          reason: r.networkReady ? "" : r.networkReason || "NetworkPluginNotReady",
          message: r.networkMessage,
        },
      ],
    },
    info: request.verbose ? { info: JSON.stringify(r.info) } : {},
  };
};
