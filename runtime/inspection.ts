/**
 * What the state-inspection HTTP endpoint shows: live sandboxes and containers, and any
 * stream's (an image's too) events with its current state. Env values are redacted, as in
 * replay.
 */
import { foldStream, isStreamKind, machines } from "../machines/fold.ts";
import { redactContext, redactPayload } from "../machines/redact.ts";
import type { Registry } from "../machines/registry.ts";
import type { PodRuntime } from "./api.ts";
import type { Reconciler } from "./reconciler.ts";

export interface InspectionViews {
  health(): { ok: boolean } & Record<string, unknown>;
  sandboxes(): unknown[];
  containers(): unknown[];
  stream(idOrPrefix: string): unknown | undefined;
  drift(): Promise<unknown>;
  reconcile(): Promise<unknown>;
}

export function inspectionViews(
  runtime: PodRuntime,
  registry: Registry,
  reconciler: Reconciler,
): InspectionViews {
  const store = registry.store;
  return {
    drift: async () => ({ drift: await reconciler.run({ repair: false }) }),
    reconcile: async () => ({ drift: await reconciler.run({ repair: true }) }),
    health: () => ({
      ok: !registry.closed,
      sandboxes: registry.actors("sandbox").length,
      containers: registry.actors("container").length,
      lastEventSeq: store.lastSeq,
    }),
    sandboxes: () => runtime.sandboxes(),
    containers: () => runtime.containers(),
    stream(idOrPrefix) {
      const id = store.streamInfo(idOrPrefix) !== undefined
        ? idOrPrefix
        : registry.resolvePrefix(idOrPrefix, "sandbox") ??
          registry.resolvePrefix(idOrPrefix, "container") ??
          registry.resolvePrefix(idOrPrefix, "image");
      const info = id === undefined ? undefined : store.streamInfo(id);
      if (id === undefined || info === undefined) return undefined;
      const events = store.readStream(id);
      const actor = registry.get(id);
      const state = actor !== undefined
        ? actor.state
        : isStreamKind(info.kind)
        ? foldStream(info.kind, id, events).state
        : null;
      return {
        stream: id,
        kind: info.kind,
        version: info.version,
        closed: info.closed,
        state: state?.value ?? null,
        final: state !== null && isStreamKind(info.kind) &&
          machines[info.kind].isFinal(state.value),
        context: state === null ? null : redactContext(info.kind, state.context),
        events: events.map((e) => ({
          seq: e.seq,
          version: e.version,
          time: new Date(e.time).toISOString(),
          type: e.type,
          data: redactPayload(e.type, e.data),
          meta: e.meta,
        })),
      };
    },
  };
}
