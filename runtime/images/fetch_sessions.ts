/**
 * What a running pull or import needs that must never be stored: the registry session (it
 * holds the caller's credentials) or the archive being read, the callers waiting on it and
 * their progress listeners. Held in memory by image stream; a stream resumed after a restart
 * has none, and its fetch is given up (pull again).
 */
import type { ArchiveImage } from "../../adapters/oci/image_archive.ts";
import type { RepositorySession, ResolvedImage } from "../../adapters/registry/mod.ts";
import type { PullProgress } from "../api.ts";

export type FetchSource =
  | { kind: "registry"; repository: RepositorySession; resolved: ResolvedImage }
  | { kind: "archive"; path: string; image: ArchiveImage };

export interface FetchSession {
  source: FetchSource;
  /** The OCI manifest the content store keeps for the image. */
  manifest: Uint8Array;
  /** Aborted once every caller waiting on the fetch has given up. */
  signal: AbortSignal;
  progress(event: PullProgress): void;
}

interface Held {
  session: FetchSession;
  controller: AbortController;
  waiters: number;
  listeners: Set<(event: PullProgress) => void>;
}

export class FetchSessions {
  readonly #held = new Map<string, Held>();

  /** Opens the session of a stream about to be recorded. */
  open(stream: string, source: FetchSource, manifest: Uint8Array): FetchSession {
    const controller = new AbortController();
    const listeners = new Set<(event: PullProgress) => void>();
    const session: FetchSession = {
      source,
      manifest,
      signal: controller.signal,
      progress(event) {
        for (const listener of listeners) {
          try {
            listener(event);
          } catch {
            // a listener that fails (a client gone) does not stop the fetch
          }
        }
      },
    };
    this.#held.set(stream, { session, controller, waiters: 0, listeners });
    return session;
  }

  get(stream: string): FetchSession | undefined {
    return this.#held.get(stream)?.session;
  }

  /**
   * Counts a caller as waiting on the stream's fetch until `leave` is called; when the last
   * one's signal aborts, the fetch is cancelled.
   */
  join(
    stream: string,
    signal: AbortSignal | undefined,
    listener: ((event: PullProgress) => void) | undefined,
  ): () => void {
    const held = this.#held.get(stream);
    if (held === undefined) return () => {};
    held.waiters++;
    if (listener !== undefined) held.listeners.add(listener);
    let left = false;
    const leave = (cancelled: boolean) => {
      if (left) return;
      left = true;
      signal?.removeEventListener("abort", onAbort);
      if (listener !== undefined) held.listeners.delete(listener);
      if (--held.waiters === 0 && cancelled) held.controller.abort(signal!.reason);
    };
    const onAbort = () => leave(true);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    return () => leave(false);
  }

  close(stream: string): void {
    this.#held.delete(stream);
  }
}
