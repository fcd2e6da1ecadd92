/**
 * How `oci-registry-pull` gets an image. PVE runs `skopeo copy docker://REF oci-archive:FILE`;
 * the default here records a placeholder archive, and a test or the LXC driver can plug in a
 * puller that copies from a real registry.
 */
import { writeFileAtomic } from "./files.ts";
import type { TaskLog } from "./driver.ts";

export interface OciPuller {
  /** Writes the image of `reference` as an OCI archive to `path`. */
  pull(request: { reference: string; path: string; log: TaskLog }): Promise<void>;
}

/** The image config a placeholder pull records: a shell, as busybox-like images have. */
export const defaultImageConfig = {
  Cmd: ["/bin/sh"],
  Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
};

/**
 * Writes a small JSON note in place of the archive, with an image config (`Entrypoint`,
 * `Cmd`, `Env`, `WorkingDir`, `User`, `StopSignal`) that creates read back as PVE reads an
 * image's. `configs` gives it per reference; others get `defaultImageConfig`.
 */
export function placeholderPuller(configs: Readonly<Record<string, unknown>> = {}): OciPuller {
  return {
    pull({ reference, path, log }) {
      log.log(`Copying image ${reference} (simulated)`);
      const config = configs[reference] ?? defaultImageConfig;
      writeFileAtomic(path, JSON.stringify({ simulated: true, reference, config }) + "\n");
      return Promise.resolve();
    },
  };
}
