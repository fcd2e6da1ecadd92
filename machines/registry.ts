/**
 * The actor registry: one actor per live stream, commands per stream in order, streams
 * concurrently. Every event is decided by the machine, appended to the store, and only then
 * acted on: the state advances and the effects it names run; their results come back as
 * events the same way. On open it loads live streams from the projections and resumes the
 * ones caught mid-step by a crash.
 */
import {
  DataLossError,
  errorMessage,
  FailedPreconditionError,
  InternalError,
  UnavailableError,
} from "../lib/errors.ts";
import { type Logger, silentLogger } from "../lib/log.ts";
import type { EventMeta, EventStore, StreamAppend } from "../store/mod.ts";
import type { EffectCall, FoldState } from "./compiled_machine.ts";
import {
  type AdapterEffectHandlers,
  containerEffectNames,
  containerFailures,
  type EffectHandler,
  type EffectHandlers,
  imageEffectNames,
  imageFailures,
  sandboxEffectNames,
  sandboxFailures,
} from "./effects.ts";
import {
  catalog,
  type DomainEvent,
  type NewEvent,
  payloadProblem,
  type StreamKind,
  streamKinds,
} from "./events.ts";
import { type ContextOf, machines } from "./fold.ts";
import { ownerEffects } from "./owner_effects.ts";
import { projectionNames, type StreamDoc, summarize, type SummaryOf } from "./projections.ts";
import { type ActorSource, StreamActor } from "./stream_actor.ts";
import type { CrashPoints } from "./crash_points.ts";

export interface RegistryOptions {
  store: EventStore;
  /** Handlers for every effect but the sandbox's own (stop/remove its containers). */
  effects: AdapterEffectHandlers;
  log?: Logger;
  clock?: () => number;
  /** Crash injection (tests only): see crash_points.ts. */
  crash?: CrashPoints;
}

/** An event the machine does not accept in the stream's current state. */
export class IllegalTransitionError extends FailedPreconditionError {
  constructor(
    readonly stream: string,
    readonly state: string,
    readonly eventType: string,
    reason: string,
  ) {
    super(`Stream "${stream}" in state "${state}" refuses ${eventType}: ${reason}`, {
      details: { stream, state, event: eventType },
    });
  }
}

/** One stream's part of a commit: events decided for one actor, in order. */
export interface Decision {
  actor: StreamActor;
  events: readonly NewEvent[];
  meta: EventMeta;
}

const failuresByKind = {
  sandbox: sandboxFailures,
  container: containerFailures,
  image: imageFailures,
} as const;

const effectNamesByKind = {
  sandbox: sandboxEffectNames,
  container: containerEffectNames,
  image: imageEffectNames,
} as const;

export class Registry {
  readonly store: EventStore;
  readonly log: Logger;
  readonly #handlers: EffectHandlers;
  readonly #clock: () => number;
  readonly #crash: CrashPoints | undefined;
  readonly #actors = new Map<string, StreamActor>();
  readonly #sources: Record<StreamKind, ActorSource<unknown, unknown>>;
  readonly #idle = new Set<() => void>();
  #inFlight = 0;
  #closed = false;

  private constructor(options: RegistryOptions) {
    this.store = options.store;
    this.log = options.log ?? silentLogger;
    this.#handlers = {
      sandbox: { ...options.effects.sandbox, ...ownerEffects(this) },
      container: options.effects.container,
      image: options.effects.image,
    };
    for (const kind of streamKinds) {
      const names = effectNamesByKind[kind];
      const bound = this.#handlers[kind] as Record<string, unknown>;
      const missing = names.filter((name) => typeof bound[name] !== "function");
      if (missing.length > 0) throw new TypeError(`No ${kind} handler for ${missing.join(", ")}`);
    }
    this.#clock = options.clock ?? Date.now;
    this.#crash = options.crash;
    this.#sources = {
      sandbox: this.#source("sandbox"),
      container: this.#source("container"),
      image: this.#source("image"),
    };
  }

  /** Loads every live stream from the projections and resumes those caught mid-step. */
  static open(options: RegistryOptions): Registry {
    const registry = new Registry(options);
    const resumable: StreamActor[] = [];
    for (const kind of streamKinds) {
      for (const row of options.store.listProjectionSummaries(projectionNames[kind])) {
        const actor = registry.#actor(kind, row.stream, row.version, row.summary);
        registry.#actors.set(row.stream, actor);
        if (!machines[kind].isSettled(actor.value)) resumable.push(actor);
      }
    }
    // Resumed once `open` has returned: an effect may reach other streams through the caller's
    // handle on the registry, and every stream is loaded by then. Counted as work in flight.
    registry.#inFlight++;
    queueMicrotask(() => {
      for (const actor of resumable) {
        registry.log.info("resuming stream", { stream: actor.stream, state: actor.value });
        registry.#runEffects(actor, machines[actor.kind].entryEffects(actor.value), true);
      }
      registry.#finishedOne();
    });
    return registry;
  }

  get(stream: string): StreamActor | undefined {
    return this.#actors.get(stream);
  }

  /** Resolves a unique prefix of a live stream id (as crictl allows), or undefined. */
  resolvePrefix(prefix: string, kind: StreamKind): string | undefined {
    if (this.#actors.get(prefix)?.kind === kind) return prefix;
    let found: string | undefined;
    for (const actor of this.#actors.values()) {
      if (actor.kind !== kind || !actor.stream.startsWith(prefix)) continue;
      if (found !== undefined) return undefined;
      found = actor.stream;
    }
    return found;
  }

  actors(kind?: StreamKind): StreamActor[] {
    const all = [...this.#actors.values()];
    return kind === undefined ? all : all.filter((a) => a.kind === kind);
  }

  /** A new actor for a stream that has no events yet. */
  newActor<K extends StreamKind>(kind: K, stream: string): StreamActor<ContextOf[K], SummaryOf[K]> {
    if (this.#actors.has(stream)) throw new TypeError(`Stream "${stream}" already has an actor`);
    const initial = machines[kind].initialState(stream) as FoldState<never>;
    const actor = this.#actor(kind, stream, 0, summarize[kind](initial), initial);
    return actor as unknown as StreamActor<ContextOf[K], SummaryOf[K]>;
  }

  /**
   * Decides, appends and applies events for one or more streams, atomically. Refusals throw
   * at once and change nothing; otherwise the promise resolves after the commit, when the
   * new states are visible and their effects have started.
   */
  async commit(decisions: readonly Decision[]): Promise<void> {
    if (this.#closed) throw new UnavailableError("The runtime is shutting down");
    const time = this.#clock();
    const planned = decisions.map((d) => this.#plan(d, time));
    const { committed } = this.store.stage(planned.map((p) => p.append));
    for (const { decision, states } of planned) {
      const { actor } = decision;
      if (actor.version === 0) this.#actors.set(actor.stream, actor);
      for (const state of states) actor.advance(state);
      actor.pending++;
    }
    try {
      await committed;
    } catch (error) {
      // The optimistic states were never stored: reload each touched stream from the log.
      for (const { decision } of planned) {
        decision.actor.pending--;
        this.#reload(decision.actor);
      }
      throw error;
    }
    this.#crash?.committed(decisions.flatMap((d) => d.events.map((e) => e.type)));
    for (const { decision, effects } of planned) {
      const { actor } = decision;
      actor.pending--;
      if (machines[actor.kind].isFinal(actor.value)) this.#actors.delete(actor.stream);
      actor.notify();
      this.#runEffects(actor, effects);
      this.#releaseIfIdle(actor);
    }
  }

  /** Resolves once no effect is running anywhere (tests and shutdown use it). */
  whenIdle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.add(resolve));
  }

  /**
   * Stops starting work, tells running effects to stop and fails callers still waiting for a
   * stream to settle. The store stays open (its owner closes it).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const reason = new UnavailableError("The runtime is shutting down");
    for (const actor of this.#actors.values()) actor.close(reason);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #plan(decision: Decision, time: number) {
    const { actor, events, meta } = decision;
    const machine = machines[actor.kind];
    let state = actor.state as FoldState<unknown>;
    const states: FoldState<unknown>[] = [];
    const effects: EffectCall[] = [];
    for (const event of events) {
      const problem = payloadProblem(event.type, catalog[event.type].version, event.data);
      if (problem !== undefined) throw new TypeError(`Malformed ${event.type}: ${problem}`);
      const step = machine.step(state as never, { ...event, time } as DomainEvent);
      if (!step.ok) {
        throw new IllegalTransitionError(actor.stream, state.value, event.type, step.reason);
      }
      // A state the decision passes through runs nothing: what its effects would have
      // produced is already among the decision's events.
      if (step.state.value !== state.value) effects.length = 0;
      state = step.state as FoldState<unknown>;
      states.push(state);
      effects.push(...step.effects);
    }
    const append: StreamAppend = {
      stream: actor.stream,
      events: events.map((e) => ({
        type: e.type,
        typeVersion: catalog[e.type].version,
        data: e.data,
        meta,
      })),
      options: {
        expectedVersion: actor.version === 0 ? "no_stream" : actor.version,
        kind: actor.kind,
        close: machine.isFinal(state.value),
        time,
      },
    };
    return { decision, states, effects, append };
  }

  #actor(
    kind: StreamKind,
    stream: string,
    version: number,
    summary: unknown,
    state?: FoldState<unknown>,
  ): StreamActor {
    return new StreamActor<unknown, unknown>({
      stream,
      kind,
      version,
      value: state?.value ?? (summary as { state: string }).state,
      summary,
      state,
      source: this.#sources[kind],
    });
  }

  /** How actors of a kind reload a released state and summarize a new one: one per kind. */
  #source(kind: StreamKind): ActorSource<unknown, unknown> {
    const name = projectionNames[kind];
    return {
      load: (stream) => {
        let row: ReturnType<typeof this.store.getProjection<StreamDoc<unknown>>>;
        try {
          row = this.store.getProjection<StreamDoc<unknown>>(name, stream);
        } catch (error) {
          if (!(error instanceof SyntaxError)) throw error;
          // Set aside; every other stream goes on.
          this.store.quarantine(stream, null, `projection row is not JSON: ${error.message}`);
          this.#actors.delete(stream);
          throw new DataLossError(`Stream "${stream}" is quarantined: its state cannot be read`, {
            details: { stream },
          });
        }
        if (row === undefined) {
          throw new InternalError(`Stream "${stream}" has no projection row`);
        }
        return { value: row.doc.state, context: row.doc.context };
      },
      summarize: (s) => (summarize[kind] as (s: FoldState<unknown>) => unknown)(s),
    };
  }

  /** A settled actor with nothing running keeps no context in memory. */
  #releaseIfIdle(actor: StreamActor): void {
    if (machines[actor.kind].isSettled(actor.value)) actor.release();
  }

  #reload(actor: StreamActor): void {
    const row = this.store.getProjection<StreamDoc<unknown>>(
      projectionNames[actor.kind],
      actor.stream,
    );
    if (row === undefined) {
      // Never committed (or now final): the actor must not be used again.
      this.#actors.delete(actor.stream);
      actor.abortEffects();
      return;
    }
    actor.reset(row.version, row.doc.state, row.summary);
  }

  #runEffects(actor: StreamActor, effects: readonly EffectCall[], resumed = false): void {
    for (const call of effects) this.#runEffect(actor, call, resumed);
  }

  #runEffect(actor: StreamActor, call: EffectCall, resumed: boolean): void {
    if (this.#closed) return;
    // Every name the machines use was checked against the handlers when the registry opened.
    const handler = (this.#handlers[actor.kind] as Record<string, EffectHandler<unknown>>)[
      call.type
    ]!;
    const signal = actor.effectSignal;
    const context = actor.state.context;
    const meta = { effect: call.type };
    const log = this.log.with({ stream: actor.stream, effect: call.type });
    const deliver = (events: readonly NewEvent[]) => {
      if (signal.aborted || this.#closed) {
        return Promise.reject(new FailedPreconditionError("The effect's state has passed"));
      }
      return this.commit([{ actor, events, meta }]);
    };
    this.#crash?.effectStarting(call.type);
    log.debug("effect started", { resumed });
    actor.inFlight++;
    this.#inFlight++;
    const run = async () => {
      let result: NewEvent | readonly NewEvent[] | void;
      try {
        result = await handler({
          stream: actor.stream,
          context,
          params: call.params,
          resumed,
          emit: (event) => deliver([event]),
          signal,
        });
      } catch (error) {
        if (signal.aborted || this.#closed) return;
        log.warn("effect failed", { error: errorMessage(error) });
        const failure = failuresByKind[actor.kind][call.type as never] as (
          error: unknown,
          context: unknown,
          params: unknown,
        ) => NewEvent | null;
        const event = failure(error, context, call.params);
        if (event !== null) await deliver([event]);
        return;
      }
      if (result === undefined) return;
      const events = Array.isArray(result) ? result : [result as NewEvent];
      if (events.length > 0) await deliver(events);
    };
    run()
      .catch((error) => {
        // A result that no longer applies (the state moved on) or a store that closed.
        log.debug("effect result dropped", { error: errorMessage(error) });
      })
      .finally(() => {
        actor.inFlight--;
        this.#releaseIfIdle(actor);
        this.#finishedOne();
      });
  }

  #finishedOne(): void {
    if (--this.#inFlight > 0) return;
    for (const resolve of this.#idle) resolve();
    this.#idle.clear();
  }
}
