/** File helpers shared by adapters. */

/**
 * Removes a file or tree, if there; off the event loop (Deno's blocking pool), so a big tree
 * does not hold up calls being answered meanwhile.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
