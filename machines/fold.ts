/**
 * The one fold: stored events → machine state, through the table compiled from each XState
 * machine. Startup, the live registry, the projections and `deno task replay` all use it.
 */
import type { RecordedEvent } from "../store/mod.ts";
import { CompiledMachine, type EffectCall, type FoldState } from "./compiled_machine.ts";
import type { ContainerContext } from "./container_context.ts";
import { containerMachine } from "./container_machine.ts";
import {
  catalog,
  type DomainEvent,
  eventSpec,
  isEventType,
  payloadProblem,
  type StreamKind,
  streamKinds,
} from "./events.ts";
import type { ImageContext } from "./image_context.ts";
import { imageMachine } from "./image_machine.ts";
import type { SandboxContext } from "./sandbox_context.ts";
import { sandboxMachine } from "./sandbox_machine.ts";

export interface ContextOf {
  sandbox: SandboxContext;
  container: ContainerContext;
  image: ImageContext;
}

export const machines: { [K in StreamKind]: CompiledMachine<ContextOf[K], DomainEvent> } = {
  sandbox: new CompiledMachine<SandboxContext, DomainEvent>(sandboxMachine, "record", {
    wholeContext: true,
  }),
  container: new CompiledMachine<ContainerContext, DomainEvent>(containerMachine, "record", {
    wholeContext: true,
  }),
  image: new CompiledMachine<ImageContext, DomainEvent>(imageMachine, "record", {
    wholeContext: true,
  }),
};

export const xstateMachines = {
  sandbox: sandboxMachine,
  container: containerMachine,
  image: imageMachine,
};

export type AnyFoldState =
  | FoldState<SandboxContext>
  | FoldState<ContainerContext>
  | FoldState<ImageContext>;

export function isStreamKind(kind: string): kind is StreamKind {
  return (streamKinds as readonly string[]).includes(kind);
}

/** Why an event cannot be folded into a stream at all (before looking at the state). */
export function eventProblem(
  event: RecordedEvent,
  options: { checkPayload: boolean },
): string | undefined {
  if (!isStreamKind(event.kind)) return `unknown stream kind "${event.kind}"`;
  if (!isEventType(event.type)) return `unknown event type "${event.type}"`;
  if (catalog[event.type].kind !== event.kind) {
    return `${event.type} belongs to ${catalog[event.type].kind} streams, not ${event.kind}`;
  }
  if (event.typeVersion !== eventSpec(event.type).version || options.checkPayload) {
    return payloadProblem(event.type, event.typeVersion, event.data);
  }
  return undefined;
}

export function toDomainEvent(event: RecordedEvent): DomainEvent {
  return { type: event.type, data: event.data, time: event.time } as DomainEvent;
}

export type FoldStep =
  | { ok: true; state: AnyFoldState; effects: EffectCall[] }
  | { ok: false; reason: string };

/** One event onto a state: the next state and its effects, or why the event is illegal. */
export function foldEvent(
  kind: StreamKind,
  state: AnyFoldState,
  event: RecordedEvent,
  options: { checkPayload: boolean } = { checkPayload: false },
): FoldStep {
  const problem = eventProblem(event, options);
  if (problem !== undefined) return { ok: false, reason: problem };
  // A recorded event has the machine event's fields (type, data, time): no copy needed.
  return (machines[kind] as CompiledMachine<unknown, DomainEvent>).step(
    state as FoldState<unknown>,
    event as unknown as DomainEvent,
  ) as FoldStep;
}

export interface FoldProblem {
  stream: string;
  seq: number;
  version: number;
  type: string;
  /** The state the event met. */
  state: string;
  reason: string;
}

export interface StreamFold {
  state: AnyFoldState;
  version: number;
  problems: FoldProblem[];
}

/**
 * Folds a stream's events from its initial state. An illegal or unknown event is reported
 * and skipped: never silently dropped.
 */
export function foldStream(
  kind: StreamKind,
  stream: string,
  events: readonly RecordedEvent[],
  options: { checkPayload: boolean } = { checkPayload: false },
): StreamFold {
  let state: AnyFoldState = machines[kind].initialState(stream);
  const problems: FoldProblem[] = [];
  let version = 0;
  for (const event of events) {
    version = event.version;
    const step = foldEvent(kind, state, event, options);
    if (step.ok) state = step.state;
    else {
      problems.push({
        stream,
        seq: event.seq,
        version: event.version,
        type: event.type,
        state: state.value,
        reason: step.reason,
      });
    }
  }
  return { state, version, problems };
}
