/**
 * The hooks.d runner: hooks chosen per container from the configs, each run with the OCI state
 * on stdin, its args and env, the bundle as working dir, and its timeout; startContainer hooks
 * in the container (the OCI runtime spec resolves their path there).
 */
import type { Logger } from "../../lib/log.ts";
import { hookApplies, type HookTarget } from "./hook_config.ts";
import { runHookProcess, Tail } from "./hook_process.ts";
import { HooksDirs } from "./hooks_dirs.ts";
import {
  type HookDefinition,
  HookFailedError,
  type HookOutcome,
  type HookRunner,
  type HookRunOptions,
} from "./mod.ts";

/** A hook without its own timeout gets this long. */
export const defaultHookTimeoutSeconds = 60;

export class OciHooks implements HookRunner {
  readonly #dirs: HooksDirs;

  constructor(dirs: string[], log: Logger) {
    this.#dirs = new HooksDirs(dirs, log);
  }

  hooksFor(target: HookTarget): HookDefinition[] {
    return this.#dirs.current().filter((config) => hookApplies(config, target))
      .flatMap((config) =>
        config.stages.map((stage) => ({
          phase: stage,
          name: `${stage}:${config.file}`,
          path: config.hook.path,
          args: config.hook.args.length > 0 ? config.hook.args : [config.hook.path],
          env: config.hook.env,
          ...(config.hook.timeout === undefined ? {} : { timeoutSeconds: config.hook.timeout }),
        }))
      );
  }

  async run(
    hook: HookDefinition,
    state: Record<string, unknown>,
    options: HookRunOptions,
  ): Promise<HookOutcome> {
    const timeoutSeconds = hook.timeoutSeconds ?? defaultHookTimeoutSeconds;
    const stdin = new TextEncoder().encode(JSON.stringify(state));
    let outcome: HookOutcome;
    if (options.inContainer !== undefined) {
      const started = performance.now();
      const result = await options.inContainer({
        argv: [hook.path, ...(hook.args ?? []).slice(1)],
        env: hook.env ?? [],
        stdin,
        timeoutSeconds,
        signal: options.signal,
      });
      const tail = (bytes: Uint8Array) => {
        const t = new Tail();
        t.push(bytes);
        return t.text();
      };
      outcome = {
        exitCode: result.timedOut ? null : result.exitCode,
        signal: result.timedOut ? "SIGKILL" : null,
        durationMs: Math.round(performance.now() - started),
        stdout: tail(result.stdout),
        stderr: tail(result.stderr),
        timedOut: result.timedOut,
      };
    } else {
      outcome = await runHookProcess(hook, stdin, {
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        timeoutMs: timeoutSeconds * 1000,
        signal: options.signal,
      });
    }
    if (outcome.timedOut) {
      throw new HookFailedError(hook, outcome, `timed out after ${timeoutSeconds} s`);
    }
    if (outcome.exitCode !== 0) {
      const how = outcome.exitCode === null
        ? `was killed by ${outcome.signal}`
        : `exited with ${outcome.exitCode}`;
      const said = outcome.stderr.trim().split("\n").slice(-1)[0] ?? "";
      throw new HookFailedError(hook, outcome, `${how}${said === "" ? "" : `: ${said}`}`);
    }
    return outcome;
  }
}
