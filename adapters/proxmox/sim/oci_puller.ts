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

/** Writes a small JSON note in place of the archive; enough for the memory driver. */
export const placeholderPuller: OciPuller = {
  pull({ reference, path, log }) {
    log.log(`Copying image ${reference} (simulated)`);
    writeFileAtomic(path, JSON.stringify({ simulated: true, reference }) + "\n");
    return Promise.resolve();
  },
};
