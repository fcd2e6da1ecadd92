/**
 * A registry image's layers into the content store: a few at once (containerd's default is
 * three), each checked against its digest as it streams; one failing stops the others, so
 * their partial files go (before the error is reported) and the first error is the one
 * reported.
 */
import type { ContentStore, Progress } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/manifest.ts";
import type { RepositorySession } from "./client.ts";

export interface PullLayersOptions {
  signal?: AbortSignal;
  /** Layers fetched at once. */
  parallel?: number;
  onProgress?: (digest: string, ...progress: Parameters<Progress>) => void;
}

export async function pullLayers(
  content: ContentStore,
  repository: RepositorySession,
  layers: readonly Descriptor[],
  options: PullLayersOptions = {},
): Promise<void> {
  const queue = [...layers];
  const stop = new AbortController();
  const signal = options.signal === undefined
    ? stop.signal
    : AbortSignal.any([options.signal, stop.signal]);
  let first: unknown;
  const worker = async () => {
    for (let layer = queue.shift(); layer !== undefined; layer = queue.shift()) {
      const digest = layer.digest;
      try {
        await content.ingest(layer, (s) => repository.blob(layer!, s), {
          signal,
          onProgress: (done, total) => options.onProgress?.(digest, done, total),
          where: `pulling layer ${digest}`,
        });
      } catch (error) {
        if (!stop.signal.aborted) {
          first = error;
          stop.abort(error);
        }
        return;
      }
    }
  };
  const workers = Math.min(options.parallel ?? 3, queue.length);
  await Promise.all(Array.from({ length: workers }, worker));
  if (first === undefined) return;
  // Failed or cancelled: report it once the layers' partial files are gone.
  await content.settled(layers.map((l) => l.digest));
  throw first;
}
