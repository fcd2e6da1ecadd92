/**
 * What CRI clients may do before they are cut off: the server's connection count and each
 * connection's HTTP/2 limits. Set in the config file's `cri` section; these are the defaults.
 */
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from "./h2/connection.ts";

export interface CriLimits extends ConnectionLimits {
  /** Client connections at once; one past it is closed as it is accepted. */
  maxConnections: number;
  /** A connection without open streams is closed after this. */
  idleTimeoutMs: number;
}

export const DEFAULT_CRI_LIMITS: CriLimits = {
  ...DEFAULT_CONNECTION_LIMITS,
  // The kubelet keeps one or two; each crictl run opens one.
  maxConnections: 128,
  idleTimeoutMs: 5 * 60_000,
};
