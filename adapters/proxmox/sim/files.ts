/** Small synchronous file helpers: the simulator writes state before it answers. */

/** Writes via a temp file and rename, so a killed process leaves the old or the new file. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const temp = `${path}.tmp-${Deno.pid}`;
  if (typeof data === "string") Deno.writeTextFileSync(temp, data, { mode });
  else Deno.writeFileSync(temp, data, { mode });
  Deno.renameSync(temp, path);
}

export function readTextIfExists(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

export function removeIfExists(path: string): boolean {
  try {
    Deno.removeSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

export function readJsonIfExists<T>(path: string): T | undefined {
  const text = readTextIfExists(path);
  return text === undefined ? undefined : JSON.parse(text) as T;
}

export function listDir(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}
