/**
 * HTTP/2 flow control (RFC 9113 §5.2, §6.9): one window for what the peer lets us send, one for
 * what we let the peer send, each for the connection and for every stream.
 */
import { MAX_WINDOW_SIZE } from "./frames.ts";

/** What the peer lets us send: DATA shrinks it, WINDOW_UPDATE and SETTINGS grow it. */
export class SendWindow {
  #available: number;

  constructor(initial: number) {
    this.#available = initial;
  }

  /** Bytes of DATA payload we may send now (0 when the window is negative). */
  get available(): number {
    return Math.max(0, this.#available);
  }

  consume(bytes: number): void {
    this.#available -= bytes;
  }

  /** Applies a WINDOW_UPDATE or an INITIAL_WINDOW_SIZE change; false if it overflows. */
  grow(delta: number): boolean {
    if (this.#available + delta > MAX_WINDOW_SIZE) return false;
    this.#available += delta;
    return true;
  }
}

/**
 * What we let the peer send. Received DATA shrinks it; once we have consumed half of it, a
 * WINDOW_UPDATE gives it back, so a steady sender never stalls and few updates are sent.
 */
export class ReceiveWindow {
  readonly #size: number;
  #available: number;
  #unannounced = 0;

  /** `size`: the window we keep restoring; `initial`: what the peer assumes right now. */
  constructor(size: number, initial = size) {
    this.#size = size;
    this.#available = initial;
    // Raise a smaller initial window (the connection's 65,535) with the first update.
    this.#unannounced = size - initial;
  }

  /** Counts a received DATA frame (padding included); false if the peer overran the window. */
  receive(bytes: number): boolean {
    if (bytes > this.#available) return false;
    this.#available -= bytes;
    return true;
  }

  /** Marks bytes as consumed; returns the WINDOW_UPDATE increment to send now, or 0. */
  release(bytes: number): number {
    this.#unannounced += bytes;
    if (this.#unannounced < this.#size / 2) return 0;
    const increment = this.#unannounced;
    this.#unannounced = 0;
    this.#available += increment;
    return increment;
  }
}
