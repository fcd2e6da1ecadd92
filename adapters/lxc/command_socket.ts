/**
 * A running container's monitor (`lxc-start`) answers commands on an abstract unix socket;
 * `lxc-info` and `lxc-wait` are clients of it. Asking it directly for the state and the init's
 * pid costs a connection (~0.2 ms) where those tools cost a process (1.5-8 ms), and a question
 * asked while the container is still starting is answered once it has started.
 *
 * Two commands only, both of LXC's numbered, stable ones (lxc/commands.h): GET_STATE (3) and
 * GET_INIT_PID (4). A request is `{int cmd; int datalen; void *data}` (16 bytes on 64-bit
 * Linux); the answer `{int ret; int datalen; void *data}` carries the value in `data`. An
 * answer of any other shape is a `CommandSocketError`: callers then use LXC's tools.
 */

import { isAlive } from "./proc.ts";

/** LXC's states, by the number the monitor answers with (lxc/state.h). */
const states = [
  "STOPPED",
  "STARTING",
  "RUNNING",
  "STOPPING",
  "ABORTING",
  "FREEZING",
  "FROZEN",
  "THAWED",
] as const;

const getState = 3;
const getInitPid = 4;

/** The monitor answered something this client does not understand. */
export class CommandSocketError extends Error {}

/**
 * The abstract unix socket a running container's monitor answers commands on, named as LXC
 * names it: `LXCPATH/NAME/command`, or, when that does not fit in a socket address, a hash
 * of `LXCPATH/NAME` (64-bit FNV-1a).
 */
export function commandSocket(lxcpath: string, name: string): string {
  const direct = `${lxcpath}/${name}/command`;
  // sun_path is 108 bytes: the leading NUL, the name, the NUL LXC ends it with.
  if (new TextEncoder().encode(direct).length < 106) return `\0${direct}`;
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(`${lxcpath}/${name}`)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return `\0lxc/${hash.toString(16).padStart(16, "0")}/command`;
}

/**
 * The container's state and init pid, or undefined when no monitor answers (not running).
 * A container still starting answers once it has started (its monitor serves commands from
 * then on); `signal` gives up on the wait.
 */
export async function queryMonitor(
  socket: string,
  signal?: AbortSignal,
): Promise<{ state: string; pid?: number } | undefined> {
  const state = await ask(socket, getState, signal);
  if (state === undefined) return undefined;
  const name = states[state];
  if (name === undefined) throw new CommandSocketError(`unknown state ${state}`);
  if (name === "STOPPED") return { state: name };
  // As lxc-info: the init's pid whenever there is one (a frozen CT has one too).
  const pid = await ask(socket, getInitPid, signal);
  if (pid === undefined) return { state: "STOPPED" }; // it stopped in between
  if (pid > 0 && isAlive(pid)) return { state: name, pid };
  // A running CT's init that is no process means this monitor speaks another protocol.
  if (name === "RUNNING") throw new CommandSocketError(`init pid ${pid} is no process`);
  return { state: name };
}

/** One command on its own connection (as LXC's tools do); undefined: nothing listens. */
async function ask(socket: string, command: number, signal?: AbortSignal) {
  if (signal?.aborted) return undefined;
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.NotFound) {
      return undefined;
    }
    throw error;
  }
  let closed = false;
  const close = () => {
    if (!closed) conn.close();
    closed = true;
  };
  signal?.addEventListener("abort", close, { once: true });
  try {
    const request = new Uint8Array(16);
    new DataView(request.buffer).setInt32(0, command, true);
    await conn.write(request);
    const answer = new Uint8Array(16);
    let got = 0;
    while (got < answer.length) {
      const n = await conn.read(answer.subarray(got));
      // The monitor went away between connect and answer: the container stopped.
      if (n === null) return got === 0 ? undefined : short(got);
      got += n;
    }
    const view = new DataView(answer.buffer);
    const ret = view.getInt32(0, true);
    const datalen = view.getInt32(4, true);
    if (ret < 0 || datalen !== 0) {
      throw new CommandSocketError(`command ${command}: ret ${ret}, datalen ${datalen}`);
    }
    return Number(view.getBigInt64(8, true));
  } catch (error) {
    if (closed) return undefined; // given up
    if (error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe) {
      return undefined;
    }
    throw error;
  } finally {
    signal?.removeEventListener("abort", close);
    close();
  }
}

function short(got: number): never {
  throw new CommandSocketError(`answer of ${got} bytes, not 16`);
}
