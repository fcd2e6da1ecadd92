/**
 * A transition table compiled from an XState machine, for folding events fast: XState's pure
 * `transition()` costs ~10 µs per event here, too slow to re-fold a million events at startup
 * or in replay. The table reads the machine's own definition (states, guards, actions) and
 * applies XState's semantics for the subset our machines use: flat states, named guards with
 * static params, one context assigner, named effects, entry actions. Tests prove it equal to
 * `transition()` on every state × event type.
 */
import type { AnyStateMachine } from "xstate";

export interface EffectCall {
  type: string;
  params?: Record<string, unknown>;
}

export interface FoldState<C> {
  value: string;
  context: C;
}

interface Guard {
  type: string;
  params: unknown;
}

interface CompiledTransition {
  guard: Guard | null;
  /** null: stays in the state without re-entering it. */
  target: string | null;
  assigns: boolean;
  effects: EffectCall[];
}

interface CompiledState {
  final: boolean;
  settled: boolean;
  entry: EffectCall[];
  on: Map<string, CompiledTransition[]>;
}

type GuardFn<C> = (args: { context: C; event: unknown }, params: unknown) => boolean;
type Assigner<C> = (args: { context: C; event: unknown }) => Partial<C>;

export type StepResult<C> =
  | { ok: true; state: FoldState<C>; effects: EffectCall[] }
  | { ok: false; reason: string };

export class CompiledMachine<C, E extends { type: string }> {
  readonly id: string;
  readonly initial: string;
  readonly #states: Map<string, CompiledState>;
  readonly #guards: Record<string, GuardFn<C>>;
  readonly #assign: Assigner<C>;
  readonly #wholeContext: boolean;
  readonly #initialContext: (input: { id: string }) => C;

  /**
   * `assignAction` names the one assign(fn) of the machine. When `wholeContext` is set, that
   * function returns the whole context (a decider's evolve), so the table takes its result
   * as is rather than merging it into a copy as XState does; the results are equal.
   */
  constructor(
    machine: AnyStateMachine,
    assignAction: string,
    options: { wholeContext?: boolean } = {},
  ) {
    this.id = machine.id;
    this.#guards = machine.implementations.guards as Record<string, GuardFn<C>>;
    this.#assign = assignerOf<C>(machine, assignAction);
    this.#wholeContext = options.wholeContext ?? false;
    this.#initialContext = initialContextOf<C>(machine);
    this.#states = new Map();
    for (const [key, node] of Object.entries(machine.root.states)) {
      this.#states.set(key, compileState(node, key, assignAction));
    }
    const initial = machine.root.initial?.target?.[0]?.key;
    if (initial === undefined) throw new TypeError(`Machine "${this.id}" has no initial state`);
    this.initial = initial;
  }

  initialState(id: string): FoldState<C> {
    return { value: this.initial, context: this.#initialContext({ id }) };
  }

  stateNames(): string[] {
    return [...this.#states.keys()];
  }

  isFinal(value: string): boolean {
    return this.#states.get(value)?.final ?? false;
  }

  /** Settled: a CRI call may answer (tagged `settled`, or final). */
  isSettled(value: string): boolean {
    const state = this.#states.get(value);
    return state !== undefined && (state.settled || state.final);
  }

  /** Event types the state has transitions for. */
  eventsOf(value: string): string[] {
    return [...(this.#states.get(value)?.on.keys() ?? [])];
  }

  /** Entry effects of a state: what resuming it after a crash runs again. */
  entryEffects(value: string): EffectCall[] {
    return this.#states.get(value)?.entry ?? [];
  }

  /** The next state and the effects to run, or why the event is not legal here. */
  step(state: FoldState<C>, event: E): StepResult<C> {
    const node = this.#states.get(state.value);
    if (node === undefined) return { ok: false, reason: `unknown state "${state.value}"` };
    const candidates = node.on.get(event.type);
    if (candidates === undefined) {
      return { ok: false, reason: `${event.type} is not accepted in state "${state.value}"` };
    }
    const args = { context: state.context, event };
    const chosen = candidates.find((t) =>
      t.guard === null || this.#guards[t.guard.type]!(args, t.guard.params)
    );
    if (chosen === undefined) {
      return { ok: false, reason: `no guard of ${event.type} holds in state "${state.value}"` };
    }
    let context = state.context;
    if (chosen.assigns) {
      const update = this.#assign(args);
      context = this.#wholeContext ? update as C : { ...state.context, ...update };
    }
    if (chosen.target === null) {
      return { ok: true, state: { value: state.value, context }, effects: chosen.effects };
    }
    const entry = this.#states.get(chosen.target)!.entry;
    return {
      ok: true,
      state: { value: chosen.target, context },
      effects: entry.length === 0 ? chosen.effects : [...chosen.effects, ...entry],
    };
  }
}

// --- compiling: only what our machines use; anything else is refused loudly ---------------

interface NodeLike {
  key: string;
  type: string;
  tags: readonly string[];
  entry: readonly unknown[];
  exit: readonly unknown[];
  always?: readonly unknown[];
  after: readonly unknown[];
  invoke: readonly unknown[];
  on: Record<string, readonly TransitionLike[]>;
}

interface TransitionLike {
  guard?: unknown;
  target?: readonly { key: string }[];
  actions: readonly unknown[];
  reenter: boolean;
}

function compileState(rawNode: unknown, key: string, assignAction: string): CompiledState {
  const node = rawNode as NodeLike;
  const where = `state "${key}"`;
  if (node.type !== "atomic" && node.type !== "final") {
    throw new TypeError(`Cannot compile ${where}: only flat states are supported`);
  }
  if ((node.always?.length ?? 0) > 0 || node.after.length > 0) {
    throw new TypeError(`Cannot compile ${where}: no eventless or delayed transitions`);
  }
  // Invoked actors act before anything is stored; effects must be named actions instead.
  if (node.invoke.length > 0) throw new TypeError(`Cannot compile ${where}: no invoked actors`);
  if (node.exit.length > 0) throw new TypeError(`Cannot compile ${where}: no exit actions`);
  const entry = node.entry.map((a) => effectCall(a, where));
  if (entry.some((e) => e.type === assignAction)) {
    throw new TypeError(`Cannot compile ${where}: entry actions may not assign`);
  }
  const on = new Map<string, CompiledTransition[]>();
  for (const [eventType, transitions] of Object.entries(node.on)) {
    on.set(eventType, transitions.map((t) => compileTransition(t, key, assignAction, where)));
  }
  return { final: node.type === "final", settled: node.tags.includes("settled"), entry, on };
}

function compileTransition(
  t: TransitionLike,
  source: string,
  assignAction: string,
  where: string,
): CompiledTransition {
  const calls = t.actions.map((a) => effectCall(a, where));
  const assignAt = calls.findIndex((c) => c.type === assignAction);
  if (assignAt > 0) {
    throw new TypeError(`Cannot compile ${where}: "${assignAction}" must be the first action`);
  }
  if ((t.target?.length ?? 0) > 1) throw new TypeError(`Cannot compile ${where}: one target only`);
  const target = t.target?.[0]?.key ?? null;
  if (target === source && t.reenter) {
    throw new TypeError(`Cannot compile ${where}: re-entering transitions are not supported`);
  }
  return {
    guard: guardOf(t.guard, where),
    // Targeting itself without re-entering runs no entry actions: the same as no target.
    target: target === source ? null : target,
    assigns: assignAt === 0,
    effects: calls.filter((c) => c.type !== assignAction),
  };
}

function effectCall(action: unknown, where: string): EffectCall {
  if (typeof action === "string") return { type: action };
  if (typeof action === "object" && action !== null && "type" in action) {
    const { type, params } = action as { type: unknown; params?: unknown };
    if (typeof type === "string" && typeof params !== "function") {
      return params === undefined ? { type } : { type, params: params as Record<string, unknown> };
    }
  }
  throw new TypeError(`Cannot compile ${where}: actions must be named, with static params`);
}

function guardOf(guard: unknown, where: string): Guard | null {
  if (guard === undefined) return null;
  if (typeof guard === "string") return { type: guard, params: undefined };
  if (typeof guard === "object" && guard !== null && "type" in guard) {
    const { type, params } = guard as { type: unknown; params?: unknown };
    if (typeof type === "string" && typeof params !== "function") return { type, params };
  }
  throw new TypeError(`Cannot compile ${where}: guards must be named, with static params`);
}

function assignerOf<C>(machine: AnyStateMachine, name: string): Assigner<C> {
  const action = machine.implementations.actions[name] as
    | { type?: string; assignment?: unknown }
    | undefined;
  if (action?.type !== "xstate.assign" || typeof action.assignment !== "function") {
    throw new TypeError(`Machine "${machine.id}": "${name}" must be assign(fn)`);
  }
  return action.assignment as Assigner<C>;
}

function initialContextOf<C>(machine: AnyStateMachine): (input: { id: string }) => C {
  const context = machine.config.context;
  if (typeof context !== "function") {
    throw new TypeError(`Machine "${machine.id}": context must be a function of input`);
  }
  return (input) => (context as (args: { input: { id: string } }) => C)({ input });
}
