/**
 * The one place pve-cri runs LXC's command-line tools (`lxc-start`, `lxc-info`, `lxc-stop`,
 * `lxc-attach`, `lxc-destroy`, `lxc-wait`). The simulator's LXC driver and the node adapter
 * both go through it: argument arrays only, a timeout on every call, and errors that name the
 * tool, the container and what LXC printed. A container's state and init pid are asked of its
 * monitor directly (command_socket.ts), with lxc-info as the fallback.
 */
import { RuntimeError } from "../../lib/errors.ts";
import { commandSocket, CommandSocketError, queryMonitor } from "./command_socket.ts";

export type LxcTool =
  | "lxc-start"
  | "lxc-stop"
  | "lxc-info"
  | "lxc-attach"
  | "lxc-destroy"
  | "lxc-wait";

export class LxcToolError extends RuntimeError {
  constructor(
    readonly tool: string,
    readonly container: string,
    readonly exitCode: number | null,
    readonly output: string,
    message?: string,
  ) {
    super(
      "Internal",
      message ??
        `${tool} -n ${container} failed` +
          (exitCode === null ? " (timed out)" : ` (exit ${exitCode})`) +
          (output === "" ? "" : `: ${output}`),
      { details: { tool, container, exitCode } },
    );
  }
}

/** Which of the tools a backend needs are missing, with the package that has them. */
export function missingLxcTools(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      Deno.statSync(`${dir}/lxc-start`);
      return undefined;
    } catch {
      // not in this directory
    }
  }
  return "lxc-start not found — apt-get install lxc for real containers";
}

export interface LxcRunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();

/** LXC's tools for containers in one lxcpath (`/var/lib/lxc` on a node). */
export class LxcTools {
  constructor(readonly lxcpath: string, readonly timeoutMs = 30_000) {}

  /** Runs a tool on a container; a non-zero exit is an `LxcToolError` unless `allowFail`. */
  async run(
    tool: LxcTool,
    name: string,
    args: readonly string[] = [],
    options: { timeoutMs?: number; allowFail?: boolean } = {},
  ): Promise<LxcRunResult> {
    const command = new Deno.Command(tool, {
      args: ["-P", this.lxcpath, "-n", name, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs),
    });
    let output: Deno.CommandOutput;
    try {
      output = await command.output();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new LxcToolError(
          tool,
          name,
          null,
          "",
          `${tool} not found — apt-get install lxc`,
        );
      }
      throw error;
    }
    const result = {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
    if (output.signal !== null && output.code !== 0 && !options.allowFail) {
      throw new LxcToolError(tool, name, null, lastLines(result.stderr));
    }
    if (output.code !== 0 && !options.allowFail) {
      throw new LxcToolError(tool, name, output.code, lastLines(result.stderr || result.stdout));
    }
    return result;
  }

  /** `RUNNING`, `STOPPED`, … and the init's host pid while it runs; STOPPED when unknown. */
  async info(name: string): Promise<{ state: string; pid?: number }> {
    try {
      const socket = commandSocket(this.lxcpath, name);
      return await queryMonitor(socket, AbortSignal.timeout(this.timeoutMs)) ??
        { state: "STOPPED" };
    } catch (error) {
      if (!(error instanceof CommandSocketError)) throw error;
      return await this.#lxcInfo(name);
    }
  }

  async #lxcInfo(name: string): Promise<{ state: string; pid?: number }> {
    const result = await this.run("lxc-info", name, ["-s", "-p"], { allowFail: true });
    if (result.code !== 0) return { state: "STOPPED" };
    const state = /^State:\s+(\S+)/m.exec(result.stdout)?.[1] ?? "STOPPED";
    const pid = Number(/^PID:\s+(\d+)/m.exec(result.stdout)?.[1]);
    return { state, ...(pid > 0 ? { pid } : {}) };
  }

  /**
   * Waits until the container is RUNNING (false: it was not within the timeout, or `signal`
   * gave up), asking its monitor directly: lxc-wait costs a process, and sleeps a whole
   * second when it connects before the monitor listens (LXC 5 retries once a second), as it
   * does when run right after lxc-start. lxc-wait is the fallback.
   */
  async waitRunning(name: string, timeoutSeconds: number, signal?: AbortSignal): Promise<boolean> {
    const socket = commandSocket(this.lxcpath, name);
    const timeout = AbortSignal.timeout(timeoutSeconds * 1000);
    const stop = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    try {
      while (!stop.aborted) {
        const info = await queryMonitor(socket, stop);
        if (info?.state === "RUNNING") return true;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return false;
    } catch (error) {
      if (!(error instanceof CommandSocketError)) throw error;
    }
    const waited = this.run("lxc-wait", name, ["-s", "RUNNING", "-t", String(timeoutSeconds)], {
      allowFail: true,
      timeoutMs: (timeoutSeconds + 5) * 1000,
    });
    return (await waited).code === 0;
  }

  /** Kills the container at once (SIGKILL to all its processes); stopped already is fine. */
  async kill(name: string): Promise<void> {
    const result = await this.run("lxc-stop", name, ["-k"], { allowFail: true });
    // 2: "not running"; anything else the container must really be stopped now.
    if (result.code !== 0 && (await this.info(name)).state !== "STOPPED") {
      throw new LxcToolError("lxc-stop", name, result.code, lastLines(result.stderr));
    }
  }
}

/** The end of a tool's output: LXC's last lines say what went wrong. */
export function lastLines(text: string, max = 3): string {
  return text.trim().split("\n").slice(-max).join("; ").slice(0, 1000);
}
