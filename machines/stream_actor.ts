import type { FoldState } from "./compiled_machine.ts";
import type { StreamKind } from "./events.ts";

/**
 * One stream's live state in the registry. Commands on it run one at a time, in order;
 * effect results arrive between them. The state is the fold of the stream's committed events.
 */
export class StreamActor<C = unknown> {
  readonly stream: string;
  readonly kind: StreamKind;
  state: FoldState<C>;
  version: number;
  /** Effects started and not finished. */
  inFlight = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #listeners = new Set<{ check(): void; fail(reason: unknown): void }>();
  #effects = new AbortController();
  #closed: { reason: unknown } | undefined;

  constructor(stream: string, kind: StreamKind, state: FoldState<C>, version: number) {
    this.stream = stream;
    this.kind = kind;
    this.state = state;
    this.version = version;
  }

  /** Runs `command` after every earlier command on this stream has finished. */
  enqueue<T>(command: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(command, command);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Aborted when the state leaves the one the current effects serve. */
  get effectSignal(): AbortSignal {
    return this.#effects.signal;
  }

  /** Moves to a new state; effects of the old state are told to stop. */
  advance(state: FoldState<C>): void {
    if (state.value !== this.state.value) {
      this.#effects.abort();
      this.#effects = new AbortController();
    }
    this.state = state;
    this.version++;
  }

  /** Stops every running effect: the registry is closing. */
  abortEffects(): void {
    this.#effects.abort();
  }

  /** Fails everyone waiting on this stream: it will not change any more in this process. */
  close(reason: unknown): void {
    this.#closed = { reason };
    this.#effects.abort(reason);
    for (const listener of [...this.#listeners]) listener.fail(reason);
  }

  /** Resolves with the state once `predicate` holds (checked now and after each commit). */
  until(predicate: (state: FoldState<C>) => boolean, signal?: AbortSignal): Promise<FoldState<C>> {
    if (predicate(this.state)) return Promise.resolve(this.state);
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
        this.#listeners.delete(listener);
        signal?.removeEventListener("abort", abort);
      };
      this.#listeners.add(listener);
      signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /** Called after each commit that changed this stream. */
  notify(): void {
    for (const listener of [...this.#listeners]) listener.check();
  }
}
