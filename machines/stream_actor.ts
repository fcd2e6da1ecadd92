import type { FoldState } from "./compiled_machine.ts";
import { AbortedError } from "../lib/errors.ts";
import type { StreamKind } from "./events.ts";

/**
 * Why an effect's signal fires when its state is left. One shared reason: `abort()` without
 * one builds a DOMException with a stack trace, on every state change of every stream.
 */
const stateLeft = new AbortedError("The stream left the state this effect served");

export interface ActorSource<C, S> {
  /** The stream's state as last committed (its projection row): for a released context. */
  load(stream: string): FoldState<C>;
  summarize(state: FoldState<C>): S;
}

/**
 * One stream's live state in the registry. Commands on it run one at a time, in order;
 * effect results arrive between them. The state is the fold of the stream's committed events.
 * A settled, idle actor keeps only its state name and summary; its context is read back from
 * the projection (stored with the same commit) when something needs it.
 */
export class StreamActor<C = unknown, S = unknown> {
  readonly stream: string;
  readonly kind: StreamKind;
  version: number;
  summary: S;
  /** Effects started and not finished. */
  inFlight = 0;
  /** Commits staged and not yet durable: the state is ahead of the store. */
  pending = 0;
  #value: string;
  #state: FoldState<C> | undefined;
  readonly #source: ActorSource<C, S>;
  // Both made on first use: a restart creates an actor for every stream, most never used.
  #queue: Promise<unknown> | undefined;
  #listeners: Set<{ check(): void; fail(reason: unknown): void }> | undefined;
  /** Made when the first effect of the current state asks for its signal. */
  #effects: AbortController | undefined;
  #closed: { reason: unknown } | undefined;

  constructor(options: {
    stream: string;
    kind: StreamKind;
    version: number;
    value: string;
    summary: S;
    source: ActorSource<C, S>;
    state?: FoldState<C> | undefined;
  }) {
    this.stream = options.stream;
    this.kind = options.kind;
    this.version = options.version;
    this.summary = options.summary;
    this.#value = options.value;
    this.#state = options.state;
    this.#source = options.source;
  }

  /** The state's name, without loading its context. */
  get value(): string {
    return this.#value;
  }

  get state(): FoldState<C> {
    if (this.#state !== undefined) return this.#state;
    const loaded = this.#source.load(this.stream);
    // A status read of an idle stream keeps nothing: memory stays with the busy ones.
    if (!this.#idle()) this.#state = loaded;
    return loaded;
  }

  /** Drops the context of an idle actor: the projection holds the same state. */
  release(): void {
    if (this.#idle()) this.#state = undefined;
  }

  #idle(): boolean {
    return this.inFlight === 0 && this.pending === 0 && !this.#listeners?.size;
  }

  /** Replaces the state with what the store holds (after a failed commit). */
  reset(version: number, value: string, summary: S): void {
    this.version = version;
    this.#value = value;
    this.summary = summary;
    this.#state = undefined;
  }

  /** Runs `command` after every earlier command on this stream has finished. */
  enqueue<T>(command: () => Promise<T>): Promise<T> {
    const run = (this.#queue ?? Promise.resolve()).then(command, command);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Aborted when the state leaves the one the current effects serve. */
  get effectSignal(): AbortSignal {
    this.#effects ??= new AbortController();
    return this.#effects.signal;
  }

  /** Moves to a new state; effects of the old state are told to stop. */
  advance(state: FoldState<C>): void {
    if (state.value !== this.#value) {
      this.#effects?.abort(stateLeft);
      this.#effects = undefined;
    }
    this.#state = state;
    this.#value = state.value;
    this.summary = this.#source.summarize(state);
    this.version++;
  }

  /** Stops every running effect: the registry is closing. */
  abortEffects(): void {
    (this.#effects ??= new AbortController()).abort(stateLeft);
  }

  /** Fails everyone waiting on this stream: it will not change any more in this process. */
  close(reason: unknown): void {
    this.#closed = { reason };
    (this.#effects ??= new AbortController()).abort(reason);
    for (const listener of [...this.#listeners ?? []]) listener.fail(reason);
  }

  /** Resolves with the state once `predicate` holds (checked now and after each commit). */
  until(predicate: (state: FoldState<C>) => boolean, signal?: AbortSignal): Promise<FoldState<C>> {
    const now = this.state;
    if (predicate(now)) return Promise.resolve(now);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#closed !== undefined) return Promise.reject(this.#closed.reason);
    return new Promise((resolve, reject) => {
      const listener = {
        check: () => {
          if (!predicate(this.state)) return;
          done();
          resolve(this.state);
        },
        fail: (reason: unknown) => {
          done();
          reject(reason);
        },
      };
      const abort = () => listener.fail(signal!.reason);
      const done = () => {
        this.#listeners?.delete(listener);
        signal?.removeEventListener("abort", abort);
      };
      (this.#listeners ??= new Set()).add(listener);
      signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /** Called after each commit that changed this stream. */
  notify(): void {
    if (this.#listeners === undefined) return;
    for (const listener of [...this.#listeners]) listener.check();
  }
}
