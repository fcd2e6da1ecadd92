/** The HTTP side of pve-cri: the state-inspection endpoint. */
export {
  type InspectionServer,
  type InspectionServerOptions,
  type InspectionViews,
  startInspectionServer,
} from "./inspection_server.ts";
export {
  DEFAULT_HOSTNAME,
  httpUrl,
  type ListenAddress,
  parseListenAddress,
} from "./listen_address.ts";
