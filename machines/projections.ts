/**
 * Read models of live sandboxes and containers, kept by the store inside each append, so
 * List calls and startup never need a replay. A row is the folded state itself; it holds the
 * name reservation as its unique key, and disappears when the stream reaches a final state.
 */
import type { Projector, RecordedEvent } from "../store/mod.ts";
import type { ContainerContext } from "./container_context.ts";
import type { StreamKind } from "./events.ts";
import { type AnyFoldState, type ContextOf, foldEvent, machines } from "./fold.ts";
import type { SandboxContext } from "./sandbox_context.ts";

export interface StreamDoc<C> {
  state: string;
  context: C;
  /** Time of the stream's last event. */
  updatedAt: number;
}

export const projectionNames: { [K in StreamKind]: string } = {
  sandbox: "sandboxes",
  container: "containers",
};

/** Sandbox names are reserved as containerd does: one live sandbox per pod metadata. */
export function sandboxKey(c: SandboxContext): string {
  const m = c.metadata;
  return `${m.namespace}/${m.name}/${m.uid}/${m.attempt}`;
}

/** Container names are reserved per sandbox and attempt. */
export function containerKey(c: ContainerContext): string {
  return `${c.sandboxId}/${c.name}/${c.attempt}`;
}

function projector<K extends StreamKind>(
  kind: K,
  keyOf: (context: ContextOf[K]) => string,
): Projector<StreamDoc<ContextOf[K]>> {
  return {
    name: projectionNames[kind],
    revision: 1,
    kinds: [kind],
    evolve(current, events: readonly RecordedEvent[]) {
      let state =
        (current === undefined
          ? machines[kind].initialState(events[0]!.stream)
          : { value: current.doc.state, context: current.doc.context }) as AnyFoldState;
      for (const event of events) {
        const step = foldEvent(kind, state, event);
        // The registry appends only legal events; a rebuild skips what replay reports.
        if (step.ok) state = step.state;
      }
      if (machines[kind].isFinal(state.value)) return null;
      const context = state.context as ContextOf[K];
      return {
        key: keyOf(context),
        doc: { state: state.value, context, updatedAt: events.at(-1)!.time },
      };
    },
  };
}

export const projectors = [
  projector("sandbox", sandboxKey),
  projector("container", containerKey),
] as const;
