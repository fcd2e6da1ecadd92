/** What /proc says of a host process: its parent, start time and children. */

let bootTimeMs: number | undefined;
const ticksPerSecond = 100; // USER_HZ on Linux x86_64

function bootTime(): number {
  if (bootTimeMs === undefined) {
    const line = /^btime (\d+)$/m.exec(Deno.readTextFileSync("/proc/stat"));
    bootTimeMs = Number(line?.[1] ?? 0) * 1000;
  }
  return bootTimeMs;
}

/** Fields of /proc/PID/stat after the command name, or undefined when the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** When the process started, ms since the epoch. */
export function processStartTime(pid: number): number | undefined {
  const fields = statFields(pid);
  if (fields === undefined) return undefined;
  return bootTime() + Math.round(Number(fields[19]) * 1000 / ticksPerSecond);
}

export function parentOf(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields === undefined ? undefined : Number(fields[1]);
}

/** The process's command name (`comm`), or undefined when it is gone. */
export function commandName(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return undefined;
  }
}

/** Running (not a zombie). */
export function isAlive(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== undefined && fields[0] !== "Z" && fields[0] !== "X";
}

/** Direct children of a process. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    // A child belongs to the thread that forked it.
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`).trim();
      if (text !== "") out.push(...text.split(" ").map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** A process and everything below it, parents first. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]!));
  return out;
}
