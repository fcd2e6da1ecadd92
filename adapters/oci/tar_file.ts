/** Reading single entries out of a tar file on disk, seeking past everything else. */
import { fileSource, TarReader } from "../../lib/tar.ts";

/**
 * The data of the regular file `name` in the archive at `path` (undefined when absent).
 * Entries before it are skipped by seeking, so a large archive costs its headers only.
 */
export async function readTarEntry(
  path: string,
  name: string,
  limit: number,
): Promise<Uint8Array | undefined> {
  const file = await Deno.open(path);
  try {
    const reader = new TarReader(fileSource(file, 64 * 1024));
    for (let entry = await reader.next(); entry !== undefined; entry = await reader.next()) {
      if (entry.type === "file" && entry.name === name) return await reader.readData(limit);
    }
    return undefined;
  } finally {
    file.close();
  }
}
