/**
 * What may be shown of a stream: env values (often Kubernetes Secrets) are replaced in
 * states and payloads. Replay, the HTTP endpoint and logs show only this.
 */
import type { ContainerContext } from "./container_context.ts";
import { redactPayload } from "./events.ts";

export const redacted = "<redacted>";

export function redactContext(kind: string, context: unknown): unknown {
  if (kind !== "container" || typeof context !== "object" || context === null) return context;
  const c = context as ContainerContext;
  if (!Array.isArray(c.envs)) return context;
  return { ...c, envs: c.envs.map(({ key }) => ({ key, value: redacted })) };
}

export { redactPayload };
