/**
 * One hook run on the node: its own session (so a timeout kills every process it started),
 * its argv and its own environment only, the OCI state on stdin; the last bytes of stdout and
 * stderr kept.
 */
import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import type { HookDefinition, HookOutcome } from "./mod.ts";

/** How much of each stream an event keeps. */
export const outputTail = 4096;

export function runHookProcess(
  hook: HookDefinition,
  stdin: Uint8Array,
  options: { cwd?: string; timeoutMs: number; signal: AbortSignal },
): Promise<HookOutcome> {
  const started = performance.now();
  const args = hook.args ?? [];
  // KEY=value entries only (the runtime spec's form); anything else is not an assignment.
  const env = Object.fromEntries(
    (hook.env ?? []).filter((e) => e.indexOf("=") > 0)
      .map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
  );
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(hook.path, args.slice(1), {
        argv0: args[0] ?? hook.path,
        env,
        cwd: options.cwd,
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (error) {
      reject(error);
      return;
    }
    const out = new Tail();
    const err = new Tail();
    let timedOut = false;
    const killGroup = () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // the group is gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    options.signal.addEventListener("abort", killGroup, { once: true });
    child.stdout!.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr!.on("data", (chunk: Buffer) => err.push(chunk));
    child.stdin!.on("error", () => {}); // a hook need not read its state
    child.stdin!.end(Buffer.from(stdin));
    child.on("error", (error) => {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", killGroup);
      reject(error);
    });
    // Done when its output closes; a child it left running may hold the pipes open, so an
    // exit also ends the wait a moment later (what the hook started is not killed: as runc).
    let exit: { code: number | null; signal: string | null } | undefined;
    let done = false;
    const finish = () => {
      if (done || exit === undefined) return;
      done = true;
      clearTimeout(timer);
      options.signal.removeEventListener("abort", killGroup);
      resolve({
        exitCode: exit.code,
        signal: exit.signal,
        durationMs: Math.round(performance.now() - started),
        stdout: out.text(),
        stderr: err.text(),
        timedOut,
      });
    };
    child.on("exit", (code: number | null, signal: string | null) => {
      exit = { code, signal };
      setTimeout(finish, 100);
    });
    child.on("close", (code: number | null, signal: string | null) => {
      exit ??= { code, signal };
      finish();
    });
  });
}

/** The last `outputTail` bytes of a stream. */
export class Tail {
  #chunks: Uint8Array[] = [];
  #size = 0;

  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#chunks.length > 1 && this.#size - this.#chunks[0]!.length >= outputTail) {
      this.#size -= this.#chunks.shift()!.length;
    }
  }

  text(): string {
    const all = Buffer.concat(this.#chunks);
    return new TextDecoder().decode(all.subarray(Math.max(0, all.length - outputTail)));
  }
}
