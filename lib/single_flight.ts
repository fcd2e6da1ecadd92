/**
 * One run of a piece of work per key, shared by every caller that asks while it runs. Each
 * caller may give up (its signal); the work itself is cancelled only when every caller has.
 */

interface Flight<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiters: number;
}

export class SingleFlight<T> {
  readonly #flights = new Map<string, Flight<T>>();

  /** Joins the run for `key`, starting it if none is running. */
  run(key: string, work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    let flight = this.#flights.get(key);
    if (flight === undefined) {
      const controller = new AbortController();
      const created: Flight<T> = {
        controller,
        waiters: 0,
        promise: Promise.resolve().then(() => work(controller.signal)).finally(() => {
          if (this.#flights.get(key) === created) this.#flights.delete(key);
        }),
      };
      flight = created;
      this.#flights.set(key, flight);
    }
    const joined = flight;
    joined.waiters++;
    if (signal === undefined) return joined.promise.finally(() => joined.waiters--);
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const leave = () => {
        if (left) return;
        left = true;
        signal.removeEventListener("abort", onAbort);
        if (--joined.waiters === 0) joined.controller.abort(signal.reason);
      };
      const onAbort = () => {
        leave();
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      joined.promise.then(
        (value) => {
          if (left) return;
          left = true;
          signal.removeEventListener("abort", onAbort);
          joined.waiters--;
          resolve(value);
        },
        (error) => {
          if (left) return;
          left = true;
          signal.removeEventListener("abort", onAbort);
          joined.waiters--;
          reject(error);
        },
      );
    });
  }

  /** Whether work for `key` is running. */
  has(key: string): boolean {
    return this.#flights.has(key);
  }
}
