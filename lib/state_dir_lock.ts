/**
 * One pve-cri process owns a state dir at a time: `start`, or `deno task images` when no
 * server runs. The owner holds an exclusive lock on `<state dir>/lock` (flock: released by
 * the kernel when the process dies, however it dies). A serving process also says where
 * it serves in `<state dir>/server.json`, so a tool finds the socket of the process that
 * holds the lock.
 */
import { join } from "node:path";

export interface ServerInfo {
  socket: string;
  pid: number;
  /** The state-inspection endpoint, when the server has one. */
  http?: string;
}

export class StateDirLock {
  readonly #file: Deno.FsFile;
  readonly #dir: string;

  private constructor(file: Deno.FsFile, dir: string) {
    this.#file = file;
    this.#dir = dir;
  }

  /** The lock, or undefined when another process holds it. */
  static async acquire(stateDir: string): Promise<StateDirLock | undefined> {
    const file = await Deno.open(join(stateDir, "lock"), {
      create: true,
      write: true,
      mode: 0o600,
    });
    if (!(await file.tryLock(true))) {
      file.close();
      return undefined;
    }
    return new StateDirLock(file, stateDir);
  }

  /** Says where this process serves (removed again on release). */
  announce(info: ServerInfo): void {
    const path = serverInfoPath(this.#dir);
    Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(info) + "\n", { mode: 0o600 });
    Deno.renameSync(`${path}.tmp`, path);
  }

  release(): void {
    try {
      Deno.removeSync(serverInfoPath(this.#dir));
    } catch {
      // never announced, or already gone
    }
    this.#file.close(); // closing the descriptor drops the lock
  }
}

/** Where the process that holds a state dir serves, if it said (it may have died since). */
export function readServerInfo(stateDir: string): ServerInfo | undefined {
  try {
    const info = JSON.parse(Deno.readTextFileSync(serverInfoPath(stateDir)));
    return typeof info.socket === "string" && typeof info.pid === "number" ? info : undefined;
  } catch {
    return undefined;
  }
}

function serverInfoPath(stateDir: string): string {
  return join(stateDir, "server.json");
}
