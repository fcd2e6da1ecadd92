/** Where pve-cri keeps its state, shared by `start` and `replay`. */

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/** /var/lib/pve-cri for root; ./.pve-cri for anyone else (a developer's checkout). */
export function defaultStateDir(): string {
  return isRoot() ? "/var/lib/pve-cri" : `${Deno.cwd()}/.pve-cri`;
}

/** The event log inside a state directory. */
export function databasePath(stateDir: string): string {
  return `${stateDir.replace(/\/+$/, "")}/events.db`;
}
